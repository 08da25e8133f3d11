// Two streams that run the halves of one decode step side by side (nano-batches, as in
// NanoFlow): while one half attends, which reads the KV cache at HBM speed and leaves the tensor
// cores idle, the other runs its GEMMs, which are compute-bound. Each half has its own
// GpuContext (stream, cuBLASLt with its own workspace, scratch), and the GEMMs' cuBLASLt assumes
// `gemm_sms` SMs (0: all), leaving the rest to the other half's attention. The halves take turns
// at attention: a half's attention waits for the other half's previous one, so that the two
// never attend at once, which would leave the tensor cores idle again. Only in CUDA builds.
#pragma once

#include <memory>

#include "kernels/gpu_context.h"

typedef struct CUevent_st* cudaEvent_t;

namespace lockstep {

class NanoBatchStreams {
 public:
  NanoBatchStreams(int gpu, int gemm_sms);
  ~NanoBatchStreams();
  NanoBatchStreams(const NanoBatchStreams&) = delete;
  NanoBatchStreams& operator=(const NanoBatchStreams&) = delete;

  static constexpr int kParts = 2;
  GpuContext& part(int p) { return *parts_[p]; }

  // Both parts' streams start after what `main` has enqueued so far; turns start over (the
  // first attention of either part waits for none).
  void fork(cudaStream_t main);
  // Before and after part p's attention kernels: waits for the other part's latest attention.
  void begin_attention(int p);
  void end_attention(int p);
  // `main` continues once both parts' work so far is done.
  void join(cudaStream_t main);

 private:
  std::unique_ptr<GpuContext> parts_[kParts];
  cudaEvent_t forked_ = nullptr, attended_[kParts] = {}, joined_[kParts] = {};
  bool attended_once_[kParts] = {};
};

}  // namespace lockstep
