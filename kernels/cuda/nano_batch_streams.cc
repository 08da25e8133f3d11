// NanoBatchStreams (see kernels/nano_batch_streams.h).
#include "kernels/nano_batch_streams.h"

#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/lt_matmul.h"

namespace lockstep {

NanoBatchStreams::NanoBatchStreams(int gpu, int gemm_sms) {
  for (auto& p : parts_) {
    p = std::make_unique<GpuContext>(gpu);
    p->gemm().set_sm_count_target(gemm_sms);
  }
  LS_CUDA_CHECK(cudaEventCreateWithFlags(&forked_, cudaEventDisableTiming));
  for (int p = 0; p < kParts; ++p) {
    LS_CUDA_CHECK(cudaEventCreateWithFlags(&attended_[p], cudaEventDisableTiming));
    LS_CUDA_CHECK(cudaEventCreateWithFlags(&joined_[p], cudaEventDisableTiming));
  }
}

NanoBatchStreams::~NanoBatchStreams() {
  for (auto& p : parts_)
    if (p) p->synchronize();
  for (cudaEvent_t e : {forked_, attended_[0], attended_[1], joined_[0], joined_[1]})
    if (e) cudaEventDestroy(e);
}

void NanoBatchStreams::fork(cudaStream_t main) {
  LS_CUDA_CHECK(cudaEventRecord(forked_, main));
  for (int p = 0; p < kParts; ++p) {
    LS_CUDA_CHECK(cudaStreamWaitEvent(parts_[p]->stream(), forked_));
    attended_once_[p] = false;
  }
}

void NanoBatchStreams::begin_attention(int p) {
  const int other = 1 - p;
  if (attended_once_[other]) LS_CUDA_CHECK(cudaStreamWaitEvent(parts_[p]->stream(), attended_[other]));
}

void NanoBatchStreams::end_attention(int p) {
  LS_CUDA_CHECK(cudaEventRecord(attended_[p], parts_[p]->stream()));
  attended_once_[p] = true;
}

void NanoBatchStreams::join(cudaStream_t main) {
  for (int p = 0; p < kParts; ++p) {
    LS_CUDA_CHECK(cudaEventRecord(joined_[p], parts_[p]->stream()));
    LS_CUDA_CHECK(cudaStreamWaitEvent(main, joined_[p]));
  }
}

}  // namespace lockstep
