// Hands each engine step's output to a thread of its own, so that what the caller does with
// step N (detokenizing, stop strings, writing results) runs while the engine runs step N + 1,
// instead of the GPU waiting for it: at 256 sequences on an H200 that host work was ~250 us of a
// ~22 ms step. One step may wait while another is handled; post() blocks past that, so the
// handler never falls more than a step behind. Once the handler throws it sees no more steps,
// and every later post() and finish() rethrows that exception.
// Not threaded (the CPU backend, whose forward's OpenMP threads want every core: there a second
// thread cost ~10% on a 2-core machine), post() handles the step itself before it returns.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "app/engine/lockstep_engine.h"

namespace lockstep {

class StepWorker {
 public:
  explicit StepWorker(std::function<void(StepOutput&)> handle, bool threaded = true);
  ~StepWorker();  // finish(), its error dropped (the caller is already unwinding)
  StepWorker(const StepWorker&) = delete;
  StepWorker& operator=(const StepWorker&) = delete;

  // Queues the step for the handler; waits while a step is already queued.
  void post(StepOutput step);
  // Waits until every posted step has been handled and stops the thread.
  void finish();

 private:
  void run();
  void rethrow_error();  // with mu_ held

  std::function<void(StepOutput&)> handle_;
  const bool threaded_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<StepOutput> queue_;
  bool closed_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace lockstep
