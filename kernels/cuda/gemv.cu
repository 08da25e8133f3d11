// A bandwidth-bound GEMV for decode (see gemv.h). One warp per output feature: its lanes stream
// the weight row in 16-byte loads (8 bf16 or fp16), multiply them with the same slice of each of the
// (at most kGemvMaxRows) input rows, and sum across the warp. Every weight byte is read once, in
// full 512-byte warp transactions, and the many independent warps keep enough loads in flight
// to approach copy bandwidth; the input rows are small and stay in L1/L2. Issuing more of a
// row's loads before using any measured slower on an H200 (16 a lane: 93 registers, the grid
// in waves; 8 a lane within 48 registers: q|k|v 0.54 -> 0.48, down 0.76 -> 0.56 of copy), so
// the loop below stays `#pragma unroll 4` (benchmarks/RESULTS.md, 2026-12-02 third session).
// Blocks are 2 warps: the grid is cut finer than the SMs' count, so that no SM is left with a
// whole block more than others (down at 7B shapes, 3584 rows: 448 blocks of 8 warps put 4 on
// some SMs and 3 on others). Batch-1 decode step on an H200, A/B in one call: 8 warps a block
// 4785 us, 2 warps 4542 / 4506 us, 1 warp 4640 us (benchmarks/RESULTS.md, 2026-12-02 sixth).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/gemv.h"
#include "kernels/fatal.h"

namespace lockstep::cuda {
namespace {

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

// acc[r] += w (8 values of chunk c, packed) . x[r][8c .. 8c + 8), for every input row r < rows,
// the rows at their own addresses (the grouped GEMV's are picked by index).
template <int R, typename X, typename T>
__device__ __forceinline__ void gemv_chunk_rows(const X* const (&x)[R], const uint4& packed, std::int64_t c,
                                                float (&acc)[R], int rows = R) {
  float wf[8];
  unpack_x8<T>(packed, wf);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
    float xf[8];
    load8<T>(x[r], c, xf);
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[r] = fmaf(wf[j], xf[j], acc[r]);
  }
}
// The same over R consecutive rows of `in` values.
template <int R, typename X, typename T>
__device__ __forceinline__ void gemv_chunk(const X* __restrict__ x, std::int64_t in, const uint4& packed,
                                           std::int64_t c, float (&acc)[R]) {
  const X* rows[R];
#pragma unroll
  for (int r = 0; r < R; ++r) rows[r] = x + r * in;
  gemv_chunk_rows<R, X, T>(rows, packed, c, acc);
}

// The first kAhead 16-byte pieces a lane reads are loaded before the dependent-launch wait: the
// weights are constant, so while the previous kernels finish (the input x comes from them) this
// kernel's first loads are already in flight. Batch-1 decode at 7B shapes on an H200, A/B in one
// call: 219.4 / 221.9 tok/s with them, 217.8 / 215.6 without (an L2 prefetch of the first K/V
// tile in the CUDA-core attention the same way: no gain, not kept; benchmarks/RESULTS.md).
// Also tried and slower: a bulk L2 prefetch of the rest of every row before the wait for the
// matrices that fit L2 (q|k|v, o): batch-1 step 4653 / 4660 us against 4505 / 4498 without.
constexpr int kAhead = 4;

constexpr int kWarpsPerBlock = 2;

// What a warp does with its sums (gemv_epilogue).
enum class Epilogue { Plain, SiluMul };

// Sums the warp's partial dot products and writes rows r < rows of y. Plain: warp w of a block
// summed weight row o (the block's w-th) and writes y[r][o] = sum + bias[o], fp32. SiluMul (w =
// [gate; up], `out` = ffn): the block's first half of warps summed gate rows o, the second half
// the up rows o + ffn of the same features, and the gate warps write y[r][o] = silu(gate) * up
// in T from gate and up rounded to T, as silu_mul writes it from linear_silu_mul's GEMM (up's
// sums pass through shared memory). Every warp of the block must call it (a barrier).
template <int R, Epilogue E, typename T, typename Y>
__device__ __forceinline__ void gemv_epilogue(float (&acc)[R], int rows, int warp, int lane, std::int64_t o, bool valid,
                                              std::int64_t out, const T* __restrict__ bias, Y* __restrict__ y) {
  constexpr bool kGlu = E == Epilogue::SiluMul;
  constexpr int kFeatures = kGlu ? kWarpsPerBlock / 2 : kWarpsPerBlock;
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = warp_sum(acc[r]);
  if constexpr (kGlu) {
    __shared__ float up_s[R][kFeatures];
    if (warp >= kFeatures && lane == 0)
#pragma unroll
      for (int r = 0; r < R; ++r) up_s[r][warp - kFeatures] = acc[r];
    __syncthreads();
    // gate and up rounded to Y first, as linear_silu_mul's GEMM writes them for bigger steps: a
    // prompt's last token then gets the same numbers alone (decode, a prefix-cache hit) as at the
    // end of its prefill (seeded sampling repeats itself).
    auto rounded = [](float v) { return to_float(round_to<Y>(v)); };
    if (warp < kFeatures && lane == 0 && valid)
#pragma unroll
      for (int r = 0; r < R; ++r)
        if (r < rows) store(y + r * out + o, silu_times(rounded(acc[r]), rounded(up_s[r][warp])));
    __syncthreads();  // up_s is written again by the caller's next rows
  } else if (lane == 0 && valid) {
    const float b = bias ? to_float(bias[o]) : 0.0f;
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < rows) y[r * out + o] = acc[r] + b;
  }
}

template <int R, Epilogue E, typename X, typename T, typename Y>
__global__ void __launch_bounds__(kWarp * kWarpsPerBlock)
    gemv_kernel(const X* __restrict__ x, std::int64_t in, const T* __restrict__ w, std::int64_t out,
                const T* __restrict__ bias, Y* __restrict__ y) {
  constexpr bool kGlu = E == Epilogue::SiluMul;
  constexpr int kFeatures = kGlu ? kWarpsPerBlock / 2 : kWarpsPerBlock;  // a block's
  static_assert(!kGlu || kWarpsPerBlock % 2 == 0, "SiluMul pairs a gate and an up warp");
  dependent_launch_trigger();
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * kFeatures + warp % kFeatures;
  const bool valid = o < out;  // the whole warp (and, for SiluMul, its pair): o is the same
  const uint4* wr = reinterpret_cast<const uint4*>(w + (o + (kGlu ? warp / kFeatures * out : 0)) * in);
  const std::int64_t chunks = valid ? in / 8 : 0;
  uint4 ahead[kAhead];
#pragma unroll
  for (int u = 0; u < kAhead; ++u) {
    const std::int64_t c = lane + u * kWarp;
    ahead[u] = c < chunks ? __ldcs(wr + c) : make_uint4(0u, 0u, 0u, 0u);  // read once: stream past the caches
  }
  dependent_launch_wait();
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
#pragma unroll
  for (int u = 0; u < kAhead; ++u)
    if (lane + u * kWarp < chunks) gemv_chunk<R, X, T>(x, in, ahead[u], lane + u * kWarp, acc);
#pragma unroll 4
  for (std::int64_t c = lane + kAhead * kWarp; c < chunks; c += kWarp) gemv_chunk<R, X, T>(x, in, __ldcs(wr + c), c, acc);
  gemv_epilogue<R, E, T>(acc, R, warp, lane, o, valid, out, bias, y);
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
  constexpr int features = E == Epilogue::SiluMul ? kWarpsPerBlock / 2 : kWarpsPerBlock;
  const unsigned blocks = static_cast<unsigned>((out + features - 1) / features);
  const unsigned threads = kWarp * kWarpsPerBlock;
  switch (rows) {
    case 1: launch(ctx, gemv_kernel<1, E, DX, T, DY>, blocks, threads, xd, in, on_device(w), out, on_device(bias),
                   on_device(y)); break;
    case 2: launch(ctx, gemv_kernel<2, E, DX, T, DY>, blocks, threads, xd, in, on_device(w), out, on_device(bias),
                   on_device(y)); break;
  }
  return true;
}


// The grouped GEMV (see gemv.h): blockIdx.y is an active-expert slot (a slot past *count
// returns) or, one pair a slot, a row; blockIdx.x a group of features as in gemv_kernel. The
// expert's rows go through in passes of up to kGroupedRows; its weight rows are read once a
// pass, through L2 (__ldg: an expert with more rows reads them again), so a decode step reads
// each chosen expert about once. Nothing is read before the dependent-launch wait: which expert
// a block takes is the previous kernel's output. kFp8: block-fp8 weights
// (kernels/fp8_weights.h), a lane's 16-byte load 16 codes of one scale block (block_cols a
// multiple of 16), their dot product with x's 16 values scaled once. Half the bytes of bf16, yet
// about the time (benchmarks/RESULTS.md, twenty-first session): each block's chain of index
// loads, not HBM, bounds the kernel.
constexpr int kGroupedRows = 8;

// The scales of block-fp8 weights (unused for 16-bit ones).
struct Fp8Scales {
  const float* scales = nullptr;
  int block_rows = 1, block_cols = 16;
};

template <Epilogue E, bool kFp8, typename T, typename Y>
__global__ void __launch_bounds__(kWarp * kWarpsPerBlock)
    grouped_gemv_kernel(const T* __restrict__ x, const int* __restrict__ x_rows, std::int64_t in,
                        const void* __restrict__ w, Fp8Scales fp8, std::int64_t out, ExpertRows experts,
                        Y* __restrict__ y) {
  constexpr bool kGlu = E == Epilogue::SiluMul;
  constexpr int kFeatures = kGlu ? kWarpsPerBlock / 2 : kWarpsPerBlock;
  constexpr int kValues = kFp8 ? 16 : 8;  // weights a 16-byte load
  dependent_launch_enter();
  int expert, first, rows;
  if (experts.offsets) {
    if (static_cast<int>(blockIdx.y) >= *experts.count) return;  // the whole block: no barrier is left waiting
    expert = experts.active[blockIdx.y];
    first = experts.offsets[expert];
    rows = experts.offsets[expert + 1] - first;
  } else {  // one pair a slot
    first = static_cast<int>(blockIdx.y);
    expert = experts.pair_experts[first];
    rows = 1;
  }
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * kFeatures + warp % kFeatures;
  const bool valid = o < out;
  const std::int64_t row = expert * (kGlu ? 2 * out : out) + o + (kGlu ? warp / kFeatures * out : 0);
  const uint4* wr = reinterpret_cast<const uint4*>(static_cast<const char*>(w) + row * in * (kFp8 ? 1 : sizeof(T)));
  const float* sr = kFp8 ? fp8.scales + row / fp8.block_rows * ((in + fp8.block_cols - 1) / fp8.block_cols) : nullptr;
  const int pieces_a_block = fp8.block_cols / 16;
  const std::int64_t chunks = valid ? in / kValues : 0;
  for (int pass = 0; pass < rows; pass += kGroupedRows) {
    const int n = min(kGroupedRows, rows - pass);
    const T* xr[kGroupedRows];
#pragma unroll
    for (int r = 0; r < kGroupedRows; ++r) {
      const int s = first + pass + min(r, n - 1);
      xr[r] = x + static_cast<std::int64_t>(x_rows ? x_rows[s] : s / experts.pairs_per_x_row) * in;
    }
    float acc[kGroupedRows];
#pragma unroll
    for (int r = 0; r < kGroupedRows; ++r) acc[r] = 0.0f;
#pragma unroll 4
    for (std::int64_t c = lane; c < chunks; c += kWarp) {
      const uint4 packed = __ldg(wr + c);
      if constexpr (!kFp8) {
        gemv_chunk_rows<kGroupedRows, T, T>(xr, packed, c, acc, n);
      } else {
        const float scale = __ldg(sr + c / pieces_a_block);
        float wf[16];
        unpack_fp8x4<__nv_fp8_e4m3>(packed.x, wf);
        unpack_fp8x4<__nv_fp8_e4m3>(packed.y, wf + 4);
        unpack_fp8x4<__nv_fp8_e4m3>(packed.z, wf + 8);
        unpack_fp8x4<__nv_fp8_e4m3>(packed.w, wf + 12);
#pragma unroll
        for (int r = 0; r < kGroupedRows; ++r) {
          if (r >= n) break;
          float xf[16];
          load8<T>(xr[r], 2 * c, xf);
          load8<T>(xr[r], 2 * c + 1, xf + 8);
          float dot = 0.0f;
#pragma unroll
          for (int j = 0; j < 16; ++j) dot = fmaf(wf[j], xf[j], dot);
          acc[r] = fmaf(dot, scale, acc[r]);
        }
      }
    }
    gemv_epilogue<kGroupedRows, E, T>(acc, n, warp, lane, o, valid, out, static_cast<const T*>(nullptr),
                                      y + static_cast<std::int64_t>(first + pass) * out);
  }
}

// w: W values, or fp8 codes with their scales (kFp8).
template <Epilogue E, bool kFp8, HalfFloat W, typename Y>
void launch_grouped_gemv(const GpuContext& ctx, const W* x, const int* x_rows, std::int64_t rows, std::int64_t in,
                         const void* w, Fp8Scales fp8, std::int64_t out, const ExpertRows& experts, Y* y) {
  const std::int64_t slots = experts.slots;
  if (rows == 0 || slots == 0) return;
  const char* name = kFp8 ? "grouped_gemv_fp8" : "grouped_gemv";
  const int values = kFp8 ? 16 : 8;
  LS_CHECK(in % values == 0 && aligned16(x) && aligned16(w), name << ": in (" << in << ") must be a multiple of "
                                                                    << values << " and x, w 16-byte aligned");
  LS_CHECK(!kFp8 || (fp8.block_cols % 16 == 0 && fp8.block_rows > 0 && out % fp8.block_rows == 0),
           name << ": the blocks' columns (" << fp8.block_cols << ") must be a multiple of 16 and the features ("
                << out << ") a multiple of the blocks' rows (" << fp8.block_rows << ")");
  LS_CHECK(slots <= 65535, name << ": " << slots << " expert slots exceed the grid's 65535");
  LS_CHECK((experts.offsets && experts.active && experts.count) ||
               (!experts.offsets && experts.pair_experts && slots == rows && experts.pairs_per_x_row >= 1),
           name << ": the expert rows are neither grouped nor one pair a slot (" << slots << " slots, " << rows
                << " rows)");
  constexpr int features = E == Epilogue::SiluMul ? kWarpsPerBlock / 2 : kWarpsPerBlock;
  const dim3 blocks(static_cast<unsigned>((out + features - 1) / features), static_cast<unsigned>(slots));
  launch(ctx, grouped_gemv_kernel<E, kFp8, device_t<W>, device_t<Y>>, blocks, kWarp * kWarpsPerBlock, on_device(x),
         x_rows, in, w, fp8, out, experts, on_device(y));
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

template <HalfFloat W>
void grouped_gemv(const GpuContext& ctx, const W* x, const int* x_rows, std::int64_t rows, std::int64_t in,
                  const W* w, std::int64_t out, const ExpertRows& experts, float* y) {
  launch_grouped_gemv<Epilogue::Plain, false>(ctx, x, x_rows, rows, in, w, {}, out, experts, y);
}

template <HalfFloat W>
void grouped_gemv_silu_mul(const GpuContext& ctx, const W* x, const int* x_rows, std::int64_t rows, std::int64_t in,
                           const W* w, std::int64_t ffn, const ExpertRows& experts, W* y) {
  launch_grouped_gemv<Epilogue::SiluMul, false>(ctx, x, x_rows, rows, in, w, {}, ffn, experts, y);
}

template <HalfFloat W>
void grouped_gemv_fp8(const GpuContext& ctx, const W* x, const int* x_rows, std::int64_t rows, std::int64_t in,
                      const fp8_e4m3* w, const float* scales, std::int64_t block_rows, std::int64_t block_cols,
                      std::int64_t out, const ExpertRows& experts, float* y) {
  const Fp8Scales fp8{scales, static_cast<int>(block_rows), static_cast<int>(block_cols)};
  launch_grouped_gemv<Epilogue::Plain, true>(ctx, x, x_rows, rows, in, w, fp8, out, experts, y);
}

template <HalfFloat W>
void grouped_gemv_silu_mul_fp8(const GpuContext& ctx, const W* x, const int* x_rows, std::int64_t rows,
                               std::int64_t in, const fp8_e4m3* w, const float* scales, std::int64_t block_rows,
                               std::int64_t block_cols, std::int64_t ffn, const ExpertRows& experts, W* y) {
  const Fp8Scales fp8{scales, static_cast<int>(block_rows), static_cast<int>(block_cols)};
  launch_grouped_gemv<Epilogue::SiluMul, true>(ctx, x, x_rows, rows, in, w, fp8, ffn, experts, y);
}

#define LOCKSTEP_GROUPED_GEMV(W)                                                                                  \
  template void grouped_gemv<W>(const GpuContext&, const W*, const int*, std::int64_t, std::int64_t, const W*,    \
                                std::int64_t, const ExpertRows&, float*);                                         \
  template void grouped_gemv_silu_mul<W>(const GpuContext&, const W*, const int*, std::int64_t, std::int64_t,    \
                                         const W*, std::int64_t, const ExpertRows&, W*);                         \
  template void grouped_gemv_fp8<W>(const GpuContext&, const W*, const int*, std::int64_t, std::int64_t,          \
                                    const fp8_e4m3*, const float*, std::int64_t, std::int64_t, std::int64_t,      \
                                    const ExpertRows&, float*);                                                   \
  template void grouped_gemv_silu_mul_fp8<W>(const GpuContext&, const W*, const int*, std::int64_t, std::int64_t, \
                                             const fp8_e4m3*, const float*, std::int64_t, std::int64_t,           \
                                             std::int64_t, const ExpertRows&, W*);
LOCKSTEP_GROUPED_GEMV(bf16)
LOCKSTEP_GROUPED_GEMV(fp16)
#undef LOCKSTEP_GROUPED_GEMV

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
