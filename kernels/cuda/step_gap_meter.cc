// StepGapMeter (see kernels/step_gap_meter.h).
#include "kernels/step_gap_meter.h"

#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/log.h"

namespace lockstep {

StepGapMeter::StepGapMeter(cudaStream_t stream) : stream_(stream) {
  LS_CUDA_CHECK(cudaEventCreate(&launch_));
  for (cudaEvent_t& e : done_) LS_CUDA_CHECK(cudaEventCreate(&e));
}

StepGapMeter::~StepGapMeter() {
  if (steps_ > 0)
    LS_DEBUG("GPU idle between steps, waiting for the host: " << 1000.0 * idle_ms_ / steps_ << " us a step of "
                                                              << 1000.0 * step_ms_ / steps_ << " ("
                                                              << 100.0 * idle_ms_ / step_ms_ << "%), over " << steps_
                                                              << " steps");
  cudaEventDestroy(launch_);  // not checked: a destructor during a fatal error must not throw
  for (cudaEvent_t e : done_) cudaEventDestroy(e);
}

void StepGapMeter::launching() {
  if (launched_) last_ = -1;  // the previous step ended without a wait (no logits): no gap to count
  LS_CUDA_CHECK(cudaEventRecord(launch_, stream_));
  launched_ = true;
}

void StepGapMeter::finish_and_wait() {
  const int now = last_ == 0 ? 1 : 0;
  LS_CUDA_CHECK(cudaEventRecord(done_[now], stream_));
  LS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (last_ >= 0 && launched_) {
    float idle = 0.0f, step = 0.0f;
    LS_CUDA_CHECK(cudaEventElapsedTime(&idle, done_[last_], launch_));
    LS_CUDA_CHECK(cudaEventElapsedTime(&step, done_[last_], done_[now]));
    idle_ms_ += idle, step_ms_ += step, ++steps_;
  }
  last_ = now;
  launched_ = false;
}

}  // namespace lockstep
