// How long the GPU sits idle between the steps of a forward loop, waiting for the host (the
// step's sync and wake-up, the scheduler, the plan, the input copies, the launch): measured on
// the GPU's own clock, from the end of one step's last copy back to the launch of the next
// step's layers. It is what overlapping the host's planning of step N + 1 with the GPU's run of
// step N (vLLM's async scheduling) could win back. Logged at debug level when the meter goes
// (LOCKSTEP_LOG_LEVEL=debug). Only in CUDA builds.
#pragma once

#include <cstdint>

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

namespace lockstep {

class StepGapMeter {
 public:
  explicit StepGapMeter(cudaStream_t stream);
  ~StepGapMeter();
  StepGapMeter(const StepGapMeter&) = delete;
  StepGapMeter& operator=(const StepGapMeter&) = delete;

  // Right before the step's layers are enqueued (not inside a graph capture).
  void launching();
  // After the step's last copy back is enqueued: waits for the stream, then counts the idle time
  // before this step's launch if the previous step ended the same way.
  void finish_and_wait();

  std::int64_t steps() const { return steps_; }
  double idle_ms() const { return idle_ms_; }
  double step_ms() const { return step_ms_; }

 private:
  cudaStream_t stream_;
  cudaEvent_t launch_ = nullptr, done_[2] = {nullptr, nullptr};
  int last_ = -1;          // done_[last_]: the previous step's end, if any
  bool launched_ = false;  // launching() since the last finish
  std::int64_t steps_ = 0;  // steps measured (each with a previous one)
  double idle_ms_ = 0.0, step_ms_ = 0.0;
};

}  // namespace lockstep
