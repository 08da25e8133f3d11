// GpuContext (see kernels/gpu_context.h).
#include "kernels/gpu_context.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <string>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/lt_matmul.h"

namespace lockstep {

GpuContext::GpuContext(int gpu) : gpu_(gpu) {
  select_gpu(gpu);
  LS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  set_up();
}

GpuContext::GpuContext(int gpu, cudaStream_t borrowed_stream) : gpu_(gpu), stream_(borrowed_stream), owns_stream_(false) {
  select_gpu(gpu);
  set_up();
}

// The SM count, compute capability and shared-memory limit, whether kernels launch as
// programmatic dependents, and cuBLAS / cuBLASLt on the stream with a fixed 32 MiB workspace
// (what cuBLAS asks for on Hopper), so that GEMMs captured in a CUDA graph do not allocate.
void GpuContext::set_up() {
  LS_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, gpu_));
  int major = 0, minor = 0, smem = 0;
  LS_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, gpu_));
  LS_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, gpu_));
  LS_CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, gpu_));
  compute_capability_ = major * 10 + minor;
  max_block_shared_memory_ = static_cast<std::size_t>(smem);
  const char* env = std::getenv("LOCKSTEP_DEPENDENT_LAUNCH");
  dependent_launch_ = major >= 9 && !(env && std::string(env) == "0");
  LS_CUBLAS_CHECK(cublasCreate(&blas_));
  LS_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
  blas_workspace_ = DeviceBuffer(DeviceKind::Cuda, std::size_t{32} << 20);
  LS_CUBLAS_CHECK(cublasSetWorkspace(blas_, blas_workspace_.data(), blas_workspace_.bytes()));
  gemm_ = std::make_unique<cuda::LtMatmul>(stream_, blas_workspace_.data(), blas_workspace_.bytes());
}

GpuContext::~GpuContext() {
  if (stream_) cudaStreamSynchronize(stream_);
  gemm_.reset();
  if (blas_) cublasDestroy(blas_);
  if (stream_ && owns_stream_) cudaStreamDestroy(stream_);
}

void* GpuContext::scratch(std::size_t bytes) {
  if (scratch_.bytes() < bytes) reserve_scratch(bytes + bytes / 4);
  return scratch_.data();
}

void GpuContext::reserve_scratch(std::size_t bytes) {
  if (scratch_.bytes() >= bytes) return;
  synchronize();  // queued work may still read the old block
  scratch_ = DeviceBuffer(DeviceKind::Cuda, bytes);
  ++scratch_generation_;
}

int* GpuContext::zeroed_counters(std::size_t count) {
  if (counters_.bytes() < count * sizeof(int)) {
    synchronize();
    counters_ = DeviceBuffer(DeviceKind::Cuda, (count + count / 4 + 64) * sizeof(int));
    counters_.fill_bytes(0);
    ++scratch_generation_;
  }
  return static_cast<int*>(counters_.data());
}

void GpuContext::synchronize() { LS_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace lockstep
