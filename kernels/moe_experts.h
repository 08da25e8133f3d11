// DeepSeek-V3's MoE routing on the GPU, so a decode step chooses its experts and moves its tokens
// without a round trip to the host (and so the whole step can be one CUDA graph). The data flow:
//
//   router logits [tokens, experts]
//     -> route_experts:   expert_ids, weights [tokens, top_k]       (as cpu::route_experts)
//     -> group_by_expert: the (token, k) pairs sorted by expert: where each expert's pairs start
//                         (offsets), which experts have any (active), each sorted pair's token, and
//                         each pair's sorted position
//     -> the experts' FFNs over their slices of the sorted pairs (rows gathered through `token`),
//        writing y [pairs, width] at the sorted positions
//     -> combine_experts: out[t] += sum_k weights[t, k] * y[position[t, k]]
// A one-token step skips the grouping: its top_k experts differ, so each pair is its own slot
// (cuda::ExpertRows::pairs, kernels/cuda/gemv.h), y is in pair order and position is null.
//
// Everything is enqueued on ctx.stream() with no host sync and no allocation (CUDA graph capture);
// every pointer is device memory. Deterministic: the same inputs give the same bits every run.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/moe_routing.h"

namespace lockstep {
class GpuContext;
}

namespace lockstep::cuda {

// Largest `experts` the GPU routing takes.
constexpr int kMaxRoutedExperts = 1024;

// As cpu::route_experts, on the GPU: logits [tokens, experts] fp32, bias [experts] fp32 (device),
// expert_ids / weights [tokens, top_k]. Same choices and tie rule (the lower index), weights
// summed in the same order (i = 0..top_k-1) as the CPU. The sigmoid is 1 / (1 + e^-x) with e^-x
// computed in double and rounded to float, which is what glibc's expf returns (to within 0.502
// ulp), so the scores match the CPU's bit for bit but in rare cases. Takes up to 32 groups of at
// least 2 experts each (the CPU's group score needs two).
void route_experts(GpuContext& ctx, const float* logits, std::int64_t tokens, const float* bias,
                   const cpu::ExpertRouting& r, int* expert_ids, float* weights);

// The (token, k) pairs (pair p = t * top_k + k, `pairs` = tokens * top_k of them) grouped by expert:
struct ExpertGroups {
  int* offsets;   // [experts + 1]: expert e's pairs are sorted positions [offsets[e], offsets[e + 1])
  int* active;    // [experts]: the experts with at least one pair, ascending, in active[0 .. *count)
  int* count;     // [1]: how many experts are active
  int* token;     // [pairs]: the token of the pair at sorted position s
  int* position;  // [pairs]: the sorted position of pair p
};
// Within an expert, pairs keep their order (ascending p): the grouping is deterministic. expert_ids
// [pairs] (route_experts' [tokens, top_k]), each in [0, experts); top_k (pairs a multiple of it)
// gives each pair's token, p / top_k. One block: pairs are at most a few thousand at decode;
// larger counts (prefill) are correct, just slower (one warp places them).
void group_by_expert(GpuContext& ctx, const int* expert_ids, std::int64_t pairs, std::int64_t top_k, int experts,
                     const ExpertGroups& g);

// out[i] = x[rows[i]] for n rows of width: the pairs' token rows in sorted order (`token`), for the
// GEMMs of steps too big for the grouped GEMVs.
template <HalfFloat W>
void gather_rows(GpuContext& ctx, const W* x, const int* rows, std::int64_t n, std::int64_t width, W* out);

// out[t, :] += sum over k = 0..top_k-1 (in that order) of weights[t * top_k + k] * y[position[t * top_k + k], :]
// y [pairs, width] fp32 (the experts' outputs at sorted positions; position null: in pair order,
// y[t * top_k + k]), out [tokens, width] fp32.
void combine_experts(GpuContext& ctx, const float* y, const int* position, const float* weights, std::int64_t tokens,
                     std::int64_t top_k, std::int64_t width, float* out);

}  // namespace lockstep::cuda
