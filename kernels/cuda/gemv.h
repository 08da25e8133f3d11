// The decode-sized linear (see gemv.cu): cuda::linear hands it steps of up to kGemvMaxRows
// rows, where the GEMM is a read of the weights and cuBLAS' tiles leave HBM bandwidth unused.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/fp8.h"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {

constexpr std::int64_t kGemvMaxRows = 2;

// y[rows, out] = x[rows, in] . w[out, in]^T (+ bias[out]), x rounded to W first when fp32,
// fp32 sums. Returns false, and enqueues nothing, when the shape does not fit: more than
// kGemvMaxRows rows, `in` not a multiple of 8, or x / w not 16-byte aligned. X: W or float.
// w is read before the previous kernels on the stream have finished (dependent launch): it must
// not be written by any of them (weights).
template <typename X, HalfFloat W>
bool gemv(const GpuContext& ctx, const X* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t out,
          const W* bias, float* y);

// SwiGLU's first half at decode: y[rows, ffn] = silu(x . gate^T) * (x . up^T) rounded to W,
// with w = [gate; up] ([2 ffn, in]); a block's warps sum gate rows and the matching up rows as
// gemv's do and write y from the pairs, gate and up rounded to W first (as linear_silu_mul's
// GEMM writes them): bit for bit what gemv into fp32, rounding to W and then silu_mul write, in
// one kernel and without the round trip. Same shape limits and dependent-launch
// contract as gemv. (Batch-1 decode on an H200, A/B in one call: a step of 4591 / 4624 us fused,
// 4610 / 4608 us as two kernels: no measurable time, one launch a layer fewer.)
template <HalfFloat W>
bool gemv_silu_mul(const GpuContext& ctx, const W* x, std::int64_t rows, std::int64_t in, const W* w,
                   std::int64_t ffn, W* y);

// Which rows each of the MoE's experts runs over at decode, read on the GPU (no host wait):
// - grouped (cuda::group_by_expert's order, kernels/moe_experts.h): expert e's rows are s in
//   [offsets[e], offsets[e + 1]), for the experts active[0 .. *count). `slots` is the most
//   experts that can be active (min(experts, rows): the grid, fixed for CUDA graphs; slots past
//   *count do nothing);
// - one (token, expert) pair a slot (offsets null): row s runs expert pair_experts[s]
//   (route_experts' ids as written), slots = rows. For a one-token step, whose top_k experts
//   differ, so no expert is read twice: the grid needs no grouping kernel, and each block one
//   load (its expert) before its weights instead of four (count, expert, offsets, row).
// Where x_rows is null, row s reads x[s / pairs_per_x_row]: 1 for x already one row a pair,
// top_k for one-pair-a-slot rows reading their token's row.
struct ExpertRows {
  const int* offsets = nullptr;
  const int* active = nullptr;
  const int* count = nullptr;
  const int* pair_experts = nullptr;
  std::int64_t slots = 0;
  int pairs_per_x_row = 1;
  static ExpertRows grouped(const int* offsets, const int* active, const int* count, std::int64_t slots) {
    return {offsets, active, count, nullptr, slots, 1};
  }
  static ExpertRows pairs(const int* expert_ids, std::int64_t rows, int pairs_per_x_row) {
    return {nullptr, nullptr, nullptr, expert_ids, rows, pairs_per_x_row};
  }
};

// The MoE's experts at decode (a grouped GEMV): each row s of an expert e (ExpertRows) reads
// x[x_rows[s]] (or as ExpertRows says with x_rows null); w stacks the experts' weights,
// [experts, out, in] (for silu_mul [experts, 2 ffn, in], each expert's gate then up).
// y[s] = x_s . w_e^T (fp32), or silu(gate) * up in W as gemv_silu_mul writes it. in a multiple
// of 8, x and w 16-byte aligned (else a fatal error).
template <HalfFloat W>
void grouped_gemv(const GpuContext& ctx, const W* x, const int* x_rows, std::int64_t rows, std::int64_t in,
                  const W* w, std::int64_t out, const ExpertRows& experts, float* y);
template <HalfFloat W>
void grouped_gemv_silu_mul(const GpuContext& ctx, const W* x, const int* x_rows, std::int64_t rows, std::int64_t in,
                           const W* w, std::int64_t ffn, const ExpertRows& experts, W* y);

// The same with the experts' weights in block-scaled fp8 (kernels/fp8_weights.h): w the codes,
// stacked as above; scales stacked the same way, [experts, rows / block_rows, in / block_cols]
// (for silu_mul, rows = 2 ffn: the gate's blocks, then the up's). in and block_cols multiples of
// 16, the features (out or ffn) a multiple of block_rows, x and w 16-byte aligned (else a fatal
// error). Each weight is its code times its scale, in fp32.
template <HalfFloat W>
void grouped_gemv_fp8(const GpuContext& ctx, const W* x, const int* x_rows, std::int64_t rows, std::int64_t in,
                      const fp8_e4m3* w, const float* scales, std::int64_t block_rows, std::int64_t block_cols,
                      std::int64_t out, const ExpertRows& experts, float* y);
template <HalfFloat W>
void grouped_gemv_silu_mul_fp8(const GpuContext& ctx, const W* x, const int* x_rows, std::int64_t rows,
                               std::int64_t in, const fp8_e4m3* w, const float* scales, std::int64_t block_rows,
                               std::int64_t block_cols, std::int64_t ffn, const ExpertRows& experts, W* y);

}  // namespace lockstep::cuda
