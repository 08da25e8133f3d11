// Programmatic dependent launch (Hopper and newer): our kernels go on the stream with
// cudaLaunchAttributeProgrammaticStreamSerialization, and each starts with
// dependent_launch_enter(): it lets the next kernel be scheduled once all of this kernel's blocks
// are running, then waits until the previous kernel has finished and its writes are visible.
// The next kernel's launch and block scheduling thus overlap this one's run. A 7B decode step is
// ~280 kernels of a few microseconds, and even replayed as a CUDA graph the GPU sat idle 12% of
// the step between them (benchmarks/kernel_profile). Nothing is touched before the wait, so the
// order of memory accesses is the plain stream order; kernels of others (cuBLAS, NCCL) and
// copies keep ordinary stream semantics on either side.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "kernels/cuda/cuda_check.h"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {

__device__ __forceinline__ void dependent_launch_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
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
