// Split-KV attention's partial results and their merge, shared by the attention kernels
// (kernels/cuda/paged_attention.cu, kernels/cuda/tensor_core_attention.cu): a context cut in
// gridDim.z splits, each block writing its unnormalised (acc, m, l) per (token, head), the last
// block of a (token, head chunk) to finish merging them into the output.
#pragma once

#include <cstdint>

#include "kernels/cuda/device_math.cuh"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {

// Split-KV partials: per (token, head, split) acc[D] (unnormalised), then m and l, padded to
// D + 4 floats so that every acc row is 16-byte aligned.
__host__ __device__ constexpr int partial_stride(int D) { return D + 4; }
constexpr int kMaxSplits = 64;

// What a launch of `splits` splits a (token, head block) needs: the partials of every (token,
// head, split) and a zeroed counter per (token, head block); none for one split.
struct SplitScratch {
  float* partial = nullptr;
  int* counters = nullptr;
};
inline SplitScratch split_scratch(GpuContext& ctx, std::int64_t tokens, std::int64_t heads, std::int64_t head_blocks,
                                  std::int64_t head_dim, int splits) {
  if (splits <= 1) return {};
  return {static_cast<float*>(ctx.scratch(static_cast<std::size_t>(tokens * heads * splits) *
                                          partial_stride(static_cast<int>(head_dim)) * sizeof(float))),
          ctx.zeroed_counters(static_cast<std::size_t>(tokens * head_blocks))};
}

// Every split of a (token, head chunk) has written its partial per head; the last of them to
// finish (a counter per (token, head chunk), left at 0 for the next launch) merges them:
// out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M), the splits always summed in index order
// (deterministic). One kernel instead of attention + a combine kernel. The merge is a short
// tail, so it is spread wide: a warp per head for the weights e^(m_s - M) / L (into w_s, at least
// n x kMaxSplits floats of shared memory), then a thread per 4 dims of a head, its split loads
// unrolled so that they are in flight together. m is in natural-log units.
__device__ inline void merge_splits_if_last(const float* partial, int* counter, std::int64_t th0, int n, int D, float* w_s,
                                     float* out) {
  __shared__ bool last;
  __threadfence();  // this block's partials are visible before its count is
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(counter, 1) == static_cast<int>(gridDim.z) - 1;
    if (last) *counter = 0;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  const int splits = gridDim.z, stride = partial_stride(D), lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  // The other blocks' partials through L2 (__ldcg): this SM's L1 never held them, but say so.
  // Loops kept rolled (unroll 1): the merge runs once per launch, and its code is fetched cold.
  // A lane holds splits lane and lane + 32 (kMaxSplits <= 64): m and l are read once, together.
  static_assert(kMaxSplits <= 2 * kWarp, "two splits a lane");
#pragma unroll 1
  for (int i = warp; i < n; i += blockDim.x / kWarp) {
    const float* p = partial + (th0 + i) * splits * stride + D;  // {m, l} of split 0
    float m[2], l[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int sp = lane + k * kWarp;
      m[k] = sp < splits ? __ldcg(p + sp * stride) : -INFINITY;
      l[k] = sp < splits ? __ldcg(p + sp * stride + 1) : 0.0f;
    }
    // An empty split has l = 0 (and m = -inf): it takes no part in the max and gets weight 0.
    const float M = warp_max(fmaxf(l[0] > 0.0f ? m[0] : -INFINITY, l[1] > 0.0f ? m[1] : -INFINITY));
    float e[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) e[k] = l[k] > 0.0f ? expf(m[k] - M) : 0.0f;
    const float L = warp_sum(l[0] * e[0] + l[1] * e[1]);
#pragma unroll
    for (int k = 0; k < 2; ++k)
      if (lane + k * kWarp < splits) w_s[i * kMaxSplits + lane + k * kWarp] = e[k] / L;
  }
  __syncthreads();
  const int quads = D / 4;
#pragma unroll 1
  for (int e = threadIdx.x; e < n * quads; e += blockDim.x) {
    const int i = e / quads, d = 4 * (e % quads);
    const float* p = partial + (th0 + i) * splits * stride + d;
    const float* w = w_s + i * kMaxSplits;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    constexpr int kUnroll = 8;
#pragma unroll 1
    for (int sp0 = 0; sp0 < splits; sp0 += kUnroll) {
      float4 a[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        a[u] = sp0 + u < splits ? __ldcg(reinterpret_cast<const float4*>(p + (sp0 + u) * stride))
                                : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (sp0 + u >= splits) break;
        const float wu = w[sp0 + u];
        o.x += wu * a[u].x, o.y += wu * a[u].y, o.z += wu * a[u].z, o.w += wu * a[u].w;
      }
    }
    float* dst = out + (th0 + i) * D + d;
    dst[0] = o.x, dst[1] = o.y, dst[2] = o.z, dst[3] = o.w;
  }
}

}  // namespace lockstep::cuda
