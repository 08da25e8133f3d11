// StepWorker (see step_worker.h).
#include "app/engine/step_worker.h"

#include <utility>

namespace lockstep {

StepWorker::StepWorker(std::function<void(StepOutput&)> handle, bool threaded)
    : handle_(std::move(handle)), threaded_(threaded) {
  if (threaded_) thread_ = std::thread([this] { run(); });
}

StepWorker::~StepWorker() {
  try {
    finish();
  } catch (...) {
  }
}

void StepWorker::rethrow_error() {
  if (error_) std::rethrow_exception(error_);
}

void StepWorker::post(StepOutput step) {
  if (!threaded_) return handle_(step);
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return queue_.empty() || error_; });
  rethrow_error();
  queue_.push_back(std::move(step));
  changed_.notify_all();
}

void StepWorker::finish() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  rethrow_error();
}

// Takes a step off the queue before handling it: post() may queue the next one meanwhile, and
// waits past that. After an error the handler sees no more steps.
void StepWorker::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return !queue_.empty() || closed_; });
    if (queue_.empty()) return;
    StepOutput step = std::move(queue_.front());
    queue_.pop_front();
    changed_.notify_all();
    if (error_) continue;
    lock.unlock();
    try {
      handle_(step);
    } catch (...) {
      lock.lock();
      error_ = std::current_exception();
      changed_.notify_all();
      continue;
    }
    lock.lock();
  }
}

}  // namespace lockstep
