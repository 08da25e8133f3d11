// StepWatchdog (see step_watchdog.h).
#include "app/engine/step_watchdog.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/fatal.h"

namespace lockstep {

StepWatchdog::StepWatchdog(double timeout_s, Expired on_expire) : timeout_(timeout_s), on_expire_(std::move(on_expire)) {
  if (enabled()) thread_ = std::thread([this] { watch(); });
}

StepWatchdog::~StepWatchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StepWatchdog::arm(std::uint64_t step) {
  if (!enabled()) return;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = true, step_ = step, since_ = Clock::now(), ++arms_;
    wake = idle_wait_;  // waiting for a deadline already: a later one is found when that one passes
  }
  if (wake) wake_.notify_one();
}

void StepWatchdog::disarm() {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = false;  // the thread finds out at its deadline: no wake-up a step
}

void StepWatchdog::watch() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_));
  while (!stop_) {
    if (!armed_) {
      idle_wait_ = true;
      wake_.wait(lock, [&] { return stop_ || armed_; });
      idle_wait_ = false;
      continue;
    }
    const std::uint64_t arming = arms_;
    const Clock::time_point deadline = since_ + timeout;
    wake_.wait_until(lock, deadline, [&] { return stop_; });
    if (stop_ || !armed_ || arms_ != arming) continue;  // finished, or a later step's clock runs
    const double seconds = std::chrono::duration<double>(Clock::now() - since_).count();
    const std::uint64_t step = step_;
    armed_ = false;  // once
    lock.unlock();
    if (on_expire_) {
      on_expire_(step, seconds);
    } else {
      LS_FATAL("engine step " << step << " has not finished after " << seconds << " s (LOCKSTEP_STEP_TIMEOUT=" << timeout_
                              << "): a rank is stuck, or a collective waits for a peer that is gone (a network "
                                 "fault, a dead node); ending the job");
    }
    lock.lock();
  }
}

double StepWatchdog::timeout_from_env(bool on_gpu) {
  const char* v = std::getenv("LOCKSTEP_STEP_TIMEOUT");
  if (!v || !*v) return on_gpu ? 600.0 : 0.0;
  std::size_t used = 0;
  double s = -1;
  try {
    s = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != std::string(v).size() || !(s >= 0) || !std::isfinite(s))
    throw std::runtime_error(std::string("LOCKSTEP_STEP_TIMEOUT=") + v + " is not a number of seconds >= 0 (0: off)");
  return std::min(s, 1e7);  // ~4 months: past that a clock's deadline would overflow
}

}  // namespace lockstep
