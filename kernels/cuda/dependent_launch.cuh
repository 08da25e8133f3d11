// Programmatic dependent launch (Hopper and newer): our kernels go on the stream with
// cudaLaunchAttributeProgrammaticStreamSerialization, and each starts with
// dependent_launch_enter(): it lets the next kernel be scheduled once all of this kernel's blocks
// are running, then waits until the previous kernel has finished and its writes are visible.
// The next kernel's launch and block scheduling thus overlap this one's run. A 7B decode step is
// ~280 kernels of a few microseconds, and even replayed as a CUDA graph the GPU sat idle 12% of
// the step between them (benchmarks/kernel_profile). Most kernels touch nothing before the wait,
// so their memory accesses keep the plain stream order; the GEMV and the CUDA-core attention
// start their loads of constant memory before it (see prefetch_l2 below for the rule). Kernels
// of others (cuBLAS, NCCL) and copies keep ordinary stream semantics on either side.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "kernels/cuda/cuda_check.h"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {

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

// What a kernel may read between dependent_launch_trigger() and dependent_launch_wait(): only
// memory no kernel of the step writes. The previous kernels may still be running then (each
// triggers its successor first thing, so the chain can run ahead), but every copy and every
// non-dependent launch (cuBLAS, NCCL) before it has finished: the weights, and the step's
// inputs uploaded before its first kernel (positions, sequence ids, block tables). A prefetch
// into L2 may touch anything (L2 is where every SM's writes meet: it cannot serve stale data).
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// EXPERIMENT (A/B on the GPU host): LOCKSTEP_EARLY_LOADS = all (default), none, gemv, attention.
inline bool early_loads(const char* who) {
  const char* e = std::getenv("LOCKSTEP_EARLY_LOADS");
  if (!e || std::strcmp(e, "all") == 0) return true;
  return std::strcmp(e, who) == 0;
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
