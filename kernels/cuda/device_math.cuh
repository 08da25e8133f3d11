// Small device helpers the CUDA kernel files share: the device types of the model's 16-bit
// float (bf16 -> __nv_bfloat16, fp16 -> __half) and of an fp8 KV cache, unpacking them, stores
// that round to an activation's (or the cache's) type, warp reductions, and grid sizing.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

#include "kernels/dtype.h"
#include "kernels/fp8.h"

namespace lockstep::cuda {

constexpr int kWarp = 32;

// The CUDA type of a host-side 16-bit float (same bits), and a pointer's cast to it.
template <typename T> struct DeviceTypeOf { using type = T; };  // float stays float
template <> struct DeviceTypeOf<bf16> { using type = __nv_bfloat16; };
template <> struct DeviceTypeOf<fp16> { using type = __half; };
template <> struct DeviceTypeOf<fp8_e4m3> { using type = __nv_fp8_e4m3; };
template <> struct DeviceTypeOf<fp8_e5m2> { using type = __nv_fp8_e5m2; };
template <typename T> using device_t = typename DeviceTypeOf<T>::type;
template <typename T> const device_t<T>* on_device(const T* p) { return reinterpret_cast<const device_t<T>*>(p); }
template <typename T> device_t<T>* on_device(T* p) { return reinterpret_cast<device_t<T>*>(p); }

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

// v rounded to nearest even in T (T = float: v).
template <typename T> __device__ __forceinline__ T round_to(float v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(v);
  else if constexpr (std::is_same_v<T, __half>) return __float2half_rn(v);
  else return v;
}

// An activation written as fp32, or rounded to bf16 / fp16 for a linear that reads it.
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }
// A K/V value into an fp8 cache: nearest even, saturating at the largest finite (kernels/fp8.h).
__device__ __forceinline__ void store(__nv_fp8_e4m3* p, float v) {
  p->__x = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
}
__device__ __forceinline__ void store(__nv_fp8_e5m2* p, float v) {
  p->__x = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E5M2);
}

// SwiGLU's silu(gate) * up, as cpu::silu_mul computes it (silu_mul and the GEMV's epilogue).
// 2^x on the special-function unit (ex2.approx: within 2 ulp; subnormal results flush to 0;
// 2^-inf = 0) without exp2f's range scaling, which cost softmax loops 3 instructions a value.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float silu_times(float gate, float up) { return gate / (1.0f + expf(-gate)) * up; }

// (a, b) rounded to T, packed in 32 bits (a in the low half, the lower address).
template <typename T> __device__ __forceinline__ unsigned pack2(float a, float b) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<const unsigned*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(a, b);
    return *reinterpret_cast<const unsigned*>(&v);
  }
}

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

// Two T (bf16 or fp16) packed in 32 bits (the lower address in the low half) as floats.
template <typename T> __device__ __forceinline__ void unpack_x2(unsigned u, float& lo, float& hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    lo = __uint_as_float(u << 16);
    hi = __uint_as_float(u & 0xffff0000u);
  } else {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&u));
    lo = f.x, hi = f.y;
  }
}

// Two fp8 codes of C (the low 16 bits of x) as an fp16 pair, exactly (e5m2 is fp16's high byte).
template <typename C>
__device__ __forceinline__ unsigned fp8x2_to_half2(unsigned x) {
  if constexpr (std::is_same_v<C, __nv_fp8_e5m2>) {
    return __byte_perm(x, 0, 0x1404);
  } else {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(x & 0xffffu), __NV_E4M3);
    return static_cast<unsigned>(h.x) | static_cast<unsigned>(h.y) << 16;
  }
}

// Four fp8 codes of C (one 4-byte load) as floats.
template <typename C>
__device__ __forceinline__ void unpack_fp8x4(unsigned u, float* f) {
  unpack_x2<__half>(fp8x2_to_half2<C>(u), f[0], f[1]);
  unpack_x2<__half>(fp8x2_to_half2<C>(u >> 16), f[2], f[3]);
}

// 4 T (one 8-byte load) as floats.
template <typename T> __device__ __forceinline__ void unpack_x4(uint2 u, float* f) {
  unpack_x2<T>(u.x, f[0], f[1]);
  unpack_x2<T>(u.y, f[2], f[3]);
}

// 8 T (one 16-byte load) as floats.
template <typename T> __device__ __forceinline__ void unpack_x8(uint4 u, float* f) {
  unpack_x4<T>(make_uint2(u.x, u.y), f);
  unpack_x4<T>(make_uint2(u.z, u.w), f + 4);
}

}  // namespace lockstep::cuda
