// Ends the job when an engine step does not finish within a timeout: a rank stuck in a
// collective whose peer is gone (an NCCL peer lost to a network fault never errors, its kernels
// spin) would otherwise hold every rank, and the allocation, forever. Armed only while a step
// runs (rank 0 from scheduling to taking the tokens back, the others from receiving a plan to the
// end of their stage), never while the server waits for requests. LOCKSTEP_STEP_TIMEOUT sets it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace lockstep {

class StepWatchdog {
 public:
  // Called once, on the watchdog's thread, when step `step` has run for `seconds` >= the timeout.
  using Expired = std::function<void(std::uint64_t step, double seconds)>;

  // timeout_s <= 0: off (no thread). on_expire empty: the fatal path (LS_FATAL, MPI_Abort).
  explicit StepWatchdog(double timeout_s, Expired on_expire = {});
  ~StepWatchdog();
  StepWatchdog(const StepWatchdog&) = delete;
  StepWatchdog& operator=(const StepWatchdog&) = delete;

  void arm(std::uint64_t step);  // a step starts (again): its clock starts now
  void disarm();                 // it finished
  bool enabled() const { return timeout_ > 0; }
  double timeout() const { return timeout_; }

  // Armed for a scope.
  class Armed {
   public:
    Armed(StepWatchdog& w, std::uint64_t step) : w_(w) { w_.arm(step); }
    ~Armed() { w_.disarm(); }
    Armed(const Armed&) = delete;
    Armed& operator=(const Armed&) = delete;

   private:
    StepWatchdog& w_;
  };

  // LOCKSTEP_STEP_TIMEOUT in seconds (0: off); unset, 600 on GPUs (as PyTorch's NCCL timeout) and
  // off on CPUs, where a large model's prefill chunk can take minutes. Throws on a value that is
  // not a number >= 0.
  static double timeout_from_env(bool on_gpu);

 private:
  void watch();

  using Clock = std::chrono::steady_clock;
  const double timeout_;
  const Expired on_expire_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool armed_ = false, idle_wait_ = false, stop_ = false;
  std::uint64_t step_ = 0, arms_ = 0;  // arms_: which arming a deadline belongs to
  Clock::time_point since_;
  std::thread thread_;
};

}  // namespace lockstep
