// A bandwidth-bound GEMV for decode (see gemv.h). One warp per output feature: its lanes stream
// the weight row in 16-byte loads (8 bf16 or fp16), multiply them with the same slice of each of the
// (at most kGemvMaxRows) input rows, and sum across the warp. Every weight byte is read once, in
// full 512-byte warp transactions, and the many independent warps keep enough loads in flight
// to approach copy bandwidth; the input rows are small and stay in L1/L2. Issuing more of a
// row's loads before using any measured slower on an H200 (16 a lane: 93 registers, the grid
// in waves; 8 a lane within 48 registers: q|k|v 0.54 -> 0.48, down 0.76 -> 0.56 of copy), so
// the loop below stays `#pragma unroll 4` (benchmarks/RESULTS.md, 2026-12-02 third session).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/gemv.h"

namespace lockstep::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;

// x[8c .. 8c + 8) as floats; fp32 inputs are rounded to T (the weights' type) as the GEMM
// path does.
template <typename T>
__device__ void load8(const T* x, std::int64_t c, float* f) {
  unpack_x8<T>(reinterpret_cast<const uint4*>(x)[c], f);
}
template <typename T>
__device__ void load8(const float* x, std::int64_t c, float* f) {
  const float4 a = reinterpret_cast<const float4*>(x)[2 * c], b = reinterpret_cast<const float4*>(x)[2 * c + 1];
  const float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
  for (int i = 0; i < 8; ++i) f[i] = to_float(round_to<T>(v[i]));
}

// acc[n][r] += w_n (8 values of chunk c of weight row n, packed) . x[r][8c .. 8c + 8), for every
// weight row n of the warp and input row r (x read once for all of them).
template <int N, int R, typename X, typename T>
__device__ __forceinline__ void gemv_chunk(const X* __restrict__ x, std::int64_t in, const uint4 (&packed)[N],
                                           std::int64_t c, float (&acc)[N][R]) {
  float wf[N][8];
#pragma unroll
  for (int n = 0; n < N; ++n) unpack_x8<T>(packed[n], wf[n]);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float xf[8];
    load8<T>(x + r * in, c, xf);
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[n][r] = fmaf(wf[n][j], xf[j], acc[n][r]);
  }
}

// The first kAhead 16-byte pieces a lane reads are loaded before the dependent-launch wait: the
// weights are constant, so while the previous kernels finish (the input x comes from them) this
// kernel's first loads are already in flight. Batch-1 decode at 7B shapes on an H200, A/B in one
// call: 219.4 / 221.9 tok/s with them, 217.8 / 215.6 without (an L2 prefetch of the first K/V
// tile in the CUDA-core attention the same way: no gain, not kept; benchmarks/RESULTS.md).
constexpr int kAhead = 4;

// Epilogues: what a warp writes from its weight rows' sums (s[n] for input row r, feature o).
// Plain: y[r][o] = s[0] + bias[o], fp32. SiluMul: the warp's rows are gate row o and up row
// o + out of a gate|up weight, and y[r][o] = silu(s[0]) * s[1] in T, as silu_mul writes it.
enum class Epilogue { Plain, SiluMul };

template <Epilogue E>
constexpr int kWeightRows = E == Epilogue::SiluMul ? 2 : 1;

template <int R, Epilogue E, typename X, typename T, typename Y>
__global__ void __launch_bounds__(kWarp * kWarpsPerBlock)
    gemv_kernel(const X* __restrict__ x, std::int64_t in, const T* __restrict__ w, std::int64_t out,
                const T* __restrict__ bias, Y* __restrict__ y) {
  constexpr int N = kWeightRows<E>;
  dependent_launch_trigger();
  const std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (o >= out) return;  // the whole warp: o is the same for its lanes
  const int lane = threadIdx.x % kWarp;
  const uint4* wr[N];
#pragma unroll
  for (int n = 0; n < N; ++n) wr[n] = reinterpret_cast<const uint4*>(w + (o + n * out) * in);
  const std::int64_t chunks = in / 8;
  uint4 ahead[kAhead][N];
#pragma unroll
  for (int u = 0; u < kAhead; ++u) {
    const std::int64_t c = lane + u * kWarp;
#pragma unroll
    for (int n = 0; n < N; ++n)  // read once: stream past the caches
      ahead[u][n] = c < chunks ? __ldcs(wr[n] + c) : make_uint4(0u, 0u, 0u, 0u);
  }
  dependent_launch_wait();
  float acc[N][R];
#pragma unroll
  for (int n = 0; n < N; ++n)
#pragma unroll
    for (int r = 0; r < R; ++r) acc[n][r] = 0.0f;
#pragma unroll
  for (int u = 0; u < kAhead; ++u)
    if (lane + u * kWarp < chunks) gemv_chunk<N, R, X, T>(x, in, ahead[u], lane + u * kWarp, acc);
  // 4 weight loads a lane in flight per iteration whatever N (see the top of the file).
#pragma unroll(4 / N)
  for (std::int64_t c = lane + kAhead * kWarp; c < chunks; c += kWarp) {
    uint4 packed[N];
#pragma unroll
    for (int n = 0; n < N; ++n) packed[n] = __ldcs(wr[n] + c);
    gemv_chunk<N, R, X, T>(x, in, packed, c, acc);
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float s[N];
#pragma unroll
    for (int n = 0; n < N; ++n) s[n] = warp_sum(acc[n][r]);
    if (lane != 0) continue;
    if constexpr (E == Epilogue::SiluMul) store(y + r * out + o, silu_times(s[0], s[1]));
    else y[r * out + o] = s[0] + (bias ? to_float(bias[o]) : 0.0f);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

template <Epilogue E, typename X, HalfFloat W, typename Y>
bool launch_gemv(const GpuContext& ctx, const X* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t out,
                 const W* bias, Y* y) {
  if (rows < 1 || rows > kGemvMaxRows || in % 8 != 0 || !aligned16(x) || !aligned16(w)) return false;
  using T = device_t<W>;
  using DX = device_t<X>;
  using DY = device_t<Y>;
  const auto* xd = on_device(x);
  const unsigned blocks = static_cast<unsigned>((out + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const unsigned threads = kWarp * kWarpsPerBlock;
  switch (rows) {
    case 1: launch(ctx, gemv_kernel<1, E, DX, T, DY>, blocks, threads, xd, in, on_device(w), out, on_device(bias),
                   on_device(y)); break;
    case 2: launch(ctx, gemv_kernel<2, E, DX, T, DY>, blocks, threads, xd, in, on_device(w), out, on_device(bias),
                   on_device(y)); break;
  }
  return true;
}

}  // namespace

static_assert(kGemvMaxRows == 2, "gemv's launch switch covers 1..2 rows");

template <typename X, HalfFloat W>
bool gemv(const GpuContext& ctx, const X* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t out,
          const W* bias, float* y) {
  return launch_gemv<Epilogue::Plain>(ctx, x, rows, in, w, out, bias, y);
}

template <HalfFloat W>
bool gemv_silu_mul(const GpuContext& ctx, const W* x, std::int64_t rows, std::int64_t in, const W* w,
                   std::int64_t ffn, W* y) {
  return launch_gemv<Epilogue::SiluMul>(ctx, x, rows, in, w, ffn, static_cast<const W*>(nullptr), y);
}

template bool gemv<bf16, bf16>(const GpuContext&, const bf16*, std::int64_t, std::int64_t, const bf16*, std::int64_t,
                               const bf16*, float*);
template bool gemv<float, bf16>(const GpuContext&, const float*, std::int64_t, std::int64_t, const bf16*,
                                std::int64_t, const bf16*, float*);
template bool gemv<fp16, fp16>(const GpuContext&, const fp16*, std::int64_t, std::int64_t, const fp16*, std::int64_t,
                               const fp16*, float*);
template bool gemv<float, fp16>(const GpuContext&, const float*, std::int64_t, std::int64_t, const fp16*,
                                std::int64_t, const fp16*, float*);
template bool gemv_silu_mul<bf16>(const GpuContext&, const bf16*, std::int64_t, std::int64_t, const bf16*,
                                  std::int64_t, bf16*);
template bool gemv_silu_mul<fp16>(const GpuContext&, const fp16*, std::int64_t, std::int64_t, const fp16*,
                                  std::int64_t, fp16*);

}  // namespace lockstep::cuda
