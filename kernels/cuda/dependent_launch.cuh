// Programmatic dependent launch (Hopper and newer): our kernels go on the stream with
// cudaLaunchAttributeProgrammaticStreamSerialization, and each starts with
// dependent_launch_enter(): it lets the next kernel be scheduled once all of this kernel's blocks
// are running, then waits until the previous kernel has finished and its writes are visible.
// The next kernel's launch and block scheduling thus overlap this one's run. A 7B decode step is
// ~280 kernels of a few microseconds, and even replayed as a CUDA graph the GPU sat idle 12% of
// the step between them (benchmarks/kernel_profile). Most kernels touch nothing before the wait,
// so their memory accesses keep the plain stream order; the GEMV starts its loads of the weights
// before it (see dependent_launch_trigger below for what may be read early). Kernels of others (cuBLAS, NCCL) and copies keep ordinary stream semantics on either side.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "kernels/cuda/cuda_check.h"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {

// Split in two where a kernel has work before the wait. What it may read between the trigger and
// the wait: only memory no kernel of the step writes. The previous kernels may still be running
// then (each triggers its successor first thing, so the chain can run ahead), but every copy and
// every non-dependent launch (cuBLAS, NCCL) before it has finished: the weights, and the step's
// inputs uploaded before its first kernel (positions, sequence ids, block tables).
__device__ __forceinline__ void dependent_launch_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void dependent_launch_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void dependent_launch_enter() {
  dependent_launch_trigger();
  dependent_launch_wait();
}

// kernel<<<grid, block, dynamic_smem, ctx.stream()>>>(args...), as a dependent launch where the
// GPU has it (GpuContext::dependent_launch()); checked.
template <typename... Params, typename... Args>
void launch_with_smem(const GpuContext& ctx, void (*kernel)(Params...), dim3 grid, dim3 block,
                      std::size_t dynamic_smem, Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = dynamic_smem;
  config.stream = ctx.stream();
  config.attrs = &attribute;
  config.numAttrs = ctx.dependent_launch() ? 1 : 0;
  LS_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

template <typename... Params, typename... Args>
void launch(const GpuContext& ctx, void (*kernel)(Params...), dim3 grid, dim3 block, Args&&... args) {
  launch_with_smem(ctx, kernel, grid, block, 0, std::forward<Args>(args)...);
}

}  // namespace lockstep::cuda
