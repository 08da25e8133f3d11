// Small device helpers the CUDA kernel files share: warp reductions, bf16 unpacking, stores that
// round to an activation's type, and grid sizing.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace lockstep::cuda {

constexpr int kWarp = 32;

inline const __nv_bfloat16* as_bf16(const bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }
inline __nv_bfloat16* as_bf16(bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }

// An activation written as fp32, or rounded to bf16 for a linear that reads it.
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

inline unsigned blocks_for(std::int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The block's largest value and, among equals, lowest index, from each thread's (best, best_i)
// (NaN never wins: comparisons with it are false); thread 0 ends with it. At most 32 warps.
__device__ inline void block_argmax(float& best, int& best_i) {
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float v = __shfl_xor_sync(0xffffffffu, best, o);
    const int j = __shfl_xor_sync(0xffffffffu, best_i, o);
    if (v > best || (v == best && j < best_i)) best = v, best_i = j;
  }
  __shared__ float vals[kWarp];
  __shared__ int idxs[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) vals[warp] = best, idxs[warp] = best_i;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < static_cast<int>(blockDim.x / kWarp); ++w)
      if (vals[w] > best || (vals[w] == best && idxs[w] < best_i)) best = vals[w], best_i = idxs[w];
}

// Two bf16 packed in 32 bits (the lower address in the low half) as floats.
__device__ __forceinline__ void unpack_bf16x2(unsigned u, float& lo, float& hi) {
  lo = __uint_as_float(u << 16);
  hi = __uint_as_float(u & 0xffff0000u);
}

// 4 bf16 (one 8-byte load) as floats.
__device__ __forceinline__ void unpack_bf16x4(uint2 u, float* f) {
  unpack_bf16x2(u.x, f[0], f[1]);
  unpack_bf16x2(u.y, f[2], f[3]);
}

// 8 bf16 (one 16-byte load) as floats.
__device__ __forceinline__ void unpack_bf16x8(uint4 u, float* f) {
  unpack_bf16x4(make_uint2(u.x, u.y), f);
  unpack_bf16x4(make_uint2(u.z, u.w), f + 4);
}

}  // namespace lockstep::cuda
