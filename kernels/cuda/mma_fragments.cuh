// Warp-level tensor-core building blocks for kernels/cuda (tensor_core_attention.cu): the
// m16n8k16 MMA in bf16 or fp16 with fp32 accumulation, ldmatrix loads of its fragments from
// shared memory, and an fp32 pair split into high and low 16-bit parts. Ampere (sm_80) on.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "kernels/cuda/device_math.cuh"

namespace lockstep::cuda {

// (a, b) rounded to T (hi, a in the low half) and what that rounding left out (lo), also in T.
// hi is read back with to_float, not unpack_x2: for bf16 that is the code the bf16-only kernel
// had, instruction for instruction (unpack_x2's shifts changed it).
template <typename T>
__device__ __forceinline__ void split_x2(float a, float b, unsigned& hi, unsigned& lo) {
  hi = pack2<T>(a, b);
  const T* h = reinterpret_cast<const T*>(&hi);
  const float ha = to_float(h[0]), hb = to_float(h[1]);
  lo = pack2<T>(a - ha, b - hb);
}

// d += a (16 x 16, row-major fragment) * b (16 x 8, column-major fragment), in T.
template <typename T>
__device__ __forceinline__ void mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // no m16n8k16 MMA before Ampere: callers keep such GPUs away
#else
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// ldmatrix: the warp loads four 8 x 8 matrices of 16-bit values from shared memory, lane t
// giving the address of row t % 8 of matrix t / 8 (16 contiguous bytes); r[i] of lane t is
// matrix i's (row t / 4, columns 2 (t % 4), +1), or with .trans its (rows 2 (t % 4), +1, column
// t / 4): the MMA fragments, one instruction for what took 4 to 16 scalar loads and packs.
__device__ __forceinline__ unsigned shared_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
// The loads take a shared-memory address (32 bits): callers that step through a swizzled row
// XOR a lane's address with the step instead of working each address out again.
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned address) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // see mma(): Ampere on only
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
#endif
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], unsigned address) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
#endif
}
__device__ __forceinline__ void ldmatrix_x2(unsigned& r0, unsigned& r1, unsigned address) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(address));
#endif
}
__device__ __forceinline__ void ldmatrix_x2_trans(unsigned& r0, unsigned& r1, unsigned address) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r0), "=r"(r1)
               : "r"(address));
#endif
}

}  // namespace lockstep::cuda
