// What the CUDA ops need besides their operands: the GPU, the stream they are enqueued on,
// cuBLAS and cuBLASLt bound to it, and scratch memory that grows on demand. One per rank (no
// globals); passed to every cuda:: op. Only in CUDA builds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/device_buffer.h"

typedef struct CUstream_st* cudaStream_t;
typedef struct cublasContext* cublasHandle_t;

namespace lockstep {

namespace cuda {
class LtMatmul;
}

class GpuContext {
 public:
  // Makes `gpu` current, creates a non-blocking stream and the cuBLAS / cuBLASLt handles on it.
  explicit GpuContext(int gpu);
  // Same, on a stream someone else owns (e.g. the NCCL collectives' stream, so kernels and
  // collectives are ordered without host waits).
  GpuContext(int gpu, cudaStream_t borrowed_stream);
  ~GpuContext();
  GpuContext(const GpuContext&) = delete;
  GpuContext& operator=(const GpuContext&) = delete;

  int gpu() const { return gpu_; }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t blas() const { return blas_; }
  // The GEMMs of cuda::linear (kernels/cuda/lt_matmul.h).
  cuda::LtMatmul& gemm() { return *gemm_; }
  // Streaming multiprocessors of the GPU (how many blocks a grid needs to fill it).
  int sm_count() const { return sm_count_; }
  // Compute capability as major * 10 + minor (90: Hopper), and the most shared memory one block
  // may opt in to (what kernels with large tiles check before they launch).
  int compute_capability() const { return compute_capability_; }
  std::size_t max_block_shared_memory() const { return max_block_shared_memory_; }
  // Whether our kernels go as programmatic dependent launches (kernels/cuda/dependent_launch.cuh):
  // compute capability 9.0 or newer, unless LOCKSTEP_DEPENDENT_LAUNCH=0.
  bool dependent_launch() const { return dependent_launch_; }
  // At least `bytes` of device memory, valid until the next call (work already enqueued on
  // stream() may still use the old block: growing synchronizes the stream first).
  void* scratch(std::size_t bytes);
  // At least `count` ints of device memory that are zero whenever no kernel is using them: each
  // user leaves its counters at zero when done (the attention's split counters). Zeroed when
  // it grows, which moves it like scratch() does.
  int* zeroed_counters(std::size_t count);
  // Makes scratch() hold `bytes` without the headroom it adds when it grows (start-up sizing,
  // before the KV cache takes what is left).
  void reserve_scratch(std::size_t bytes);
  // Counts the times scratch() or zeroed_counters() moved (what captured CUDA graphs that use
  // them depend on).
  std::uint64_t scratch_generation() const { return scratch_generation_; }
  // Waits for everything enqueued on stream().
  void synchronize();

 private:
  void set_up();  // after the GPU is current and the stream is known
  int gpu_;
  cudaStream_t stream_ = nullptr;
  bool owns_stream_ = true;
  cublasHandle_t blas_ = nullptr;
  int sm_count_ = 0;
  int compute_capability_ = 0;
  std::size_t max_block_shared_memory_ = 0;
  bool dependent_launch_ = false;
  DeviceBuffer scratch_, counters_;
  std::uint64_t scratch_generation_ = 0;
  DeviceBuffer blas_workspace_;  // given to cuBLAS so that it never allocates inside a graph capture
  std::unique_ptr<cuda::LtMatmul> gemm_;  // shares blas_workspace_: both run in stream order
};

}  // namespace lockstep
