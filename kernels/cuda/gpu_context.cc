// GpuContext (see kernels/gpu_context.h).
#include "kernels/gpu_context.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"

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

// The SM count, and a cuBLAS handle on the stream with a fixed 32 MiB workspace (what cuBLAS
// asks for on Hopper), so that GEMMs captured in a CUDA graph do not allocate.
void GpuContext::set_up() {
  LS_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, gpu_));
  LS_CUBLAS_CHECK(cublasCreate(&blas_));
  LS_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
  blas_workspace_ = DeviceBuffer(DeviceKind::Cuda, std::size_t{32} << 20);
  LS_CUBLAS_CHECK(cublasSetWorkspace(blas_, blas_workspace_.data(), blas_workspace_.bytes()));
}

GpuContext::~GpuContext() {
  if (stream_) cudaStreamSynchronize(stream_);
  if (blas_) cublasDestroy(blas_);
  if (stream_ && owns_stream_) cudaStreamDestroy(stream_);
}

void* GpuContext::scratch(std::size_t bytes) {
  if (scratch_.bytes() < bytes) {
    synchronize();  // queued work may still read the old block
    scratch_ = DeviceBuffer(DeviceKind::Cuda, bytes + bytes / 4);
    ++scratch_generation_;
  }
  return scratch_.data();
}

void GpuContext::synchronize() { LS_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace lockstep
