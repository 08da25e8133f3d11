// CUDA kernels of the MoE's routing, grouping and combining (see kernels/moe_experts.h);
// cpu/moe_routing.cc is the reference route_experts is tested against. Sized for decode (a few
// dozen tokens, up to 256 experts): simple kernels, every choice made by integer counts or in a
// fixed order so results never depend on thread scheduling.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/fatal.h"
#include "kernels/gpu_context.h"
#include "kernels/moe_experts.h"

namespace lockstep::cuda {
namespace {

constexpr int kRouteThreads = 256;
constexpr int kMaxGroups = kWarp;  // the kept groups are chosen by one thread per group
constexpr int kGroupThreads = 1024;
constexpr int kStagedPairs = 4096;  // expert ids the grouping's walk reads from shared memory at a time
static_assert(kGroupThreads >= kMaxRoutedExperts, "group_by_expert scans the experts a thread each");
constexpr int kCombineThreads = 256;

// Whether a comes before b in the order (value descending, index ascending): std::partial_sort's
// comparator in cpu::route_experts. A strict total order without NaNs, so the first k are unique.
__device__ __forceinline__ bool ahead(float a, int ia, float b, int ib) { return a > b || (a == b && ia < ib); }

// A block per token. Scores and biased choices in shared memory; a warp per group finds its two
// best choices; a thread per group ranks the groups (how many come ahead of it); the experts are
// ranked likewise, which places the top_k without a sort, in two rounds to keep the loops short:
// an expert of the top_k has fewer than top_k ahead of it anywhere, so also within its slice of
// 32 experts: each slice's own top_k are the candidates, and every expert ahead of one of the
// top_k is itself a candidate, so a candidate's rank among the candidates is its rank overall
// (the others rank top_k or worse there too, as all of the top_k are ahead of them).
__global__ void __launch_bounds__(kRouteThreads)
route_experts_kernel(const float* logits, const float* bias, int experts, int groups, int top_groups, int top_k,
                     bool normalize, float scaling, int* expert_ids, float* weights) {
  dependent_launch_enter();
  __shared__ float score[kMaxRoutedExperts], choice[kMaxRoutedExperts];
  __shared__ int chosen[kMaxRoutedExperts], candidate_index[kMaxRoutedExperts];
  __shared__ float candidate_value[kMaxRoutedExperts];
  __shared__ int candidates;
  __shared__ float group_score[kMaxGroups];
  __shared__ bool kept[kMaxGroups];
  __shared__ float sum;
  const std::int64_t t = blockIdx.x;
  const float* row = logits + t * experts;
  for (int e = threadIdx.x; e < experts; e += blockDim.x) {
    // e^-x in double rounded to float: what glibc's expf (the CPU's std::exp) returns.
    const float ex = static_cast<float>(exp(-static_cast<double>(row[e])));
    score[e] = 1.0f / (1.0f + ex);
    choice[e] = score[e] + bias[e];
  }
  __syncthreads();

  // Each lane keeps its two largest (as a multiset: equal values count twice), then the warp
  // merges them pairwise: the top two of a union are among the two halves' top twos.
  const int per_group = experts / groups, lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  for (int g = warp; g < groups; g += blockDim.x / kWarp) {
    float first = -INFINITY, second = -INFINITY;
    for (int i = lane; i < per_group; i += kWarp) {
      const float v = choice[g * per_group + i];
      if (v > first) second = first, first = v;
      else if (v > second) second = v;
    }
    for (int o = kWarp / 2; o > 0; o /= 2) {
      const float other_first = __shfl_xor_sync(0xffffffffu, first, o);
      const float other_second = __shfl_xor_sync(0xffffffffu, second, o);
      second = fmaxf(fminf(first, other_first), fmaxf(second, other_second));
      first = fmaxf(first, other_first);
    }
    if (lane == 0) group_score[g] = first + second;
  }
  __syncthreads();
  if (const int g = threadIdx.x; g < groups) {
    int rank = 0;
    for (int h = 0; h < groups; ++h) rank += ahead(group_score[h], h, group_score[g], g);
    kept[g] = rank < top_groups;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < experts; e += blockDim.x)
    if (!kept[e / per_group]) choice[e] = -INFINITY;
  if (threadIdx.x == 0) candidates = 0;
  __syncthreads();
  // -inf == -inf, so masked experts tie and are ranked by index, as the CPU's sort takes them.
  for (int e = threadIdx.x; e < experts; e += blockDim.x) {
    const int slice = e - e % kWarp, slice_end = min(slice + kWarp, experts);
    const float v = choice[e];
    int rank = 0;
    for (int j = slice; j < slice_end; ++j) rank += ahead(choice[j], j, v, e);
    if (rank < top_k) {
      const int c = atomicAdd(&candidates, 1);  // the list's order varies, the ranks do not
      candidate_index[c] = e;
      candidate_value[c] = v;
    }
  }
  __syncthreads();
  const int n = candidates;
  for (int c = threadIdx.x; c < n; c += blockDim.x) {
    const int e = candidate_index[c];
    const float v = candidate_value[c];
    int rank = 0;
    for (int i = 0; i < n; ++i) rank += ahead(candidate_value[i], candidate_index[i], v, e);
    if (rank < top_k) chosen[rank] = e;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;  // in the CPU's order, for the same rounding
    for (int i = 0; i < top_k; ++i) s += score[chosen[i]];
    sum = s;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < top_k; i += blockDim.x) {
    float w = score[chosen[i]];
    if (normalize) w /= sum + 1e-20f;
    expert_ids[t * top_k + i] = chosen[i];
    weights[t * top_k + i] = w * scaling;
  }
}

// Exclusive prefix sum of v over the block (thread order); total gets the block's sum.
__device__ int block_exclusive_scan(int v, int* warp_totals, int& total) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  int inclusive = v;
  for (int o = 1; o < kWarp; o *= 2) {
    const int below = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += below;
  }
  __syncthreads();  // warp_totals[] may still be read by a previous call
  if (lane == kWarp - 1) warp_totals[warp] = inclusive;
  __syncthreads();
  int before = 0;
  total = 0;
  for (int w = 0; w < warps; ++w) {
    if (w < warp) before += warp_totals[w];
    total += warp_totals[w];
  }
  return before + inclusive - v;
}

// One block: every thread counts pairs (shared atomics; integer counts come out the same in any
// order), a thread per expert scans the counts into offsets and the active list, then one warp
// walks the pairs in order, 32 at a time: the lanes holding the same expert (__match_any_sync)
// take consecutive places after that expert's cursor, lower lane first, so the order within an
// expert is the pairs' order. The whole block first stages the ids the walk reads into shared
// memory: read from global memory, each of the walk's steps waited a memory round trip.
__global__ void __launch_bounds__(kGroupThreads)
group_by_expert_kernel(const int* expert_ids, int pairs, int top_k, int experts, ExpertGroups g) {
  dependent_launch_enter();
  __shared__ int cursor[kMaxRoutedExperts];
  __shared__ int warp_totals[kGroupThreads / kWarp];
  __shared__ int staged[kStagedPairs];
  for (int e = threadIdx.x; e < experts; e += blockDim.x) cursor[e] = 0;
  __syncthreads();
  for (int p = threadIdx.x; p < pairs; p += blockDim.x) atomicAdd(&cursor[expert_ids[p]], 1);
  __syncthreads();
  const int e = threadIdx.x, n = e < experts ? cursor[e] : 0;
  int total = 0, active_total = 0;
  const int start = block_exclusive_scan(n, warp_totals, total);
  const int slot = block_exclusive_scan(n > 0 ? 1 : 0, warp_totals, active_total);
  if (e < experts) {
    g.offsets[e] = start;
    if (n > 0) g.active[slot] = e;
    cursor[e] = start;  // every thread read its count before the scans' syncs
  }
  if (e == 0) {
    g.offsets[experts] = total;
    *g.count = active_total;
  }
  const int lane = threadIdx.x;
  for (int chunk = 0; chunk < pairs; chunk += kStagedPairs) {
    const int chunk_pairs = min(kStagedPairs, pairs - chunk);
    __syncthreads();  // the cursors are set; the walk of the previous chunk is done with staged[]
    for (int i = threadIdx.x; i < chunk_pairs; i += blockDim.x) staged[i] = expert_ids[chunk + i];
    __syncthreads();
    if (threadIdx.x >= kWarp) continue;
    for (int base = 0; base < chunk_pairs; base += kWarp) {
      const int i = base + lane, p = chunk + i;
      const bool valid = i < chunk_pairs;
      const int ex = valid ? staged[i] : -1;
      const unsigned peers = __match_any_sync(0xffffffffu, ex);
      const int before = __popc(peers & ((1u << lane) - 1u));
      const int s = valid ? cursor[ex] + before : 0;
      __syncwarp();  // every lane has read its cursor before the first of its peers moves it
      if (valid && before == 0) cursor[ex] += __popc(peers);
      __syncwarp();
      if (valid) {
        g.position[p] = s;
        g.token[s] = p / top_k;
      }
    }
  }
}

template <typename T>
__global__ void gather_rows_kernel(const T* x, const int* rows, std::int64_t width, T* out) {
  dependent_launch_enter();
  const T* src = x + static_cast<std::int64_t>(rows[blockIdx.x]) * width;
  T* dst = out + static_cast<std::int64_t>(blockIdx.x) * width;
  for (std::int64_t i = threadIdx.x; i < width; i += blockDim.x) dst[i] = src[i];
}

// A thread per (token, column); the top_k terms summed in order, then added to out. position
// null: y in pair order.
__global__ void __launch_bounds__(kCombineThreads)
combine_experts_kernel(const float* y, const int* position, const float* weights, int top_k, std::int64_t width,
                       float* out) {
  dependent_launch_enter();
  const std::int64_t t = blockIdx.x;
  const int* pos = position ? position + t * top_k : nullptr;
  const float* w = weights + t * top_k;
  float* row = out + t * width;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.y) * blockDim.x;
  for (std::int64_t j = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; j < width; j += step) {
    float acc = 0.0f;
    for (int k = 0; k < top_k; ++k)
      acc += w[k] * y[static_cast<std::int64_t>(position ? pos[k] : t * top_k + k) * width + j];
    row[j] += acc;
  }
}

}  // namespace

void route_experts(GpuContext& ctx, const float* logits, std::int64_t tokens, const float* bias,
                   const cpu::ExpertRouting& r, int* expert_ids, float* weights) {
  if (tokens == 0) return;
  LS_CHECK(tokens > 0 && tokens <= INT_MAX, "route_experts: " << tokens << " tokens");
  LS_CHECK(r.experts >= 1 && r.experts <= kMaxRoutedExperts,
           "route_experts: " << r.experts << " experts (the GPU routing takes 1 to " << kMaxRoutedExperts << ")");
  LS_CHECK(r.groups >= 1 && r.groups <= kMaxGroups,
           "route_experts: " << r.groups << " expert groups (the GPU routing takes 1 to " << kMaxGroups << ")");
  LS_CHECK(r.experts % r.groups == 0, "route_experts: " << r.experts << " experts in " << r.groups << " groups");
  LS_CHECK(r.experts / r.groups >= 2,
           "route_experts: groups of " << r.experts / r.groups << " expert (a group is scored by its best two)");
  LS_CHECK(r.top_groups >= 1 && r.top_groups <= r.groups,
           "route_experts: top " << r.top_groups << " of " << r.groups << " groups");
  LS_CHECK(r.top_k >= 1 && r.top_k <= r.experts, "route_experts: top " << r.top_k << " of " << r.experts << " experts");
  launch(ctx, route_experts_kernel, static_cast<unsigned>(tokens), kRouteThreads, logits, bias, r.experts, r.groups,
         r.top_groups, r.top_k, r.normalize, r.scaling, expert_ids, weights);
}

void group_by_expert(GpuContext& ctx, const int* expert_ids, std::int64_t pairs, std::int64_t top_k, int experts,
                     const ExpertGroups& g) {
  if (pairs == 0) return;
  LS_CHECK(pairs > 0 && pairs <= INT_MAX, "group_by_expert: " << pairs << " pairs");
  LS_CHECK(top_k >= 1 && pairs % top_k == 0, "group_by_expert: " << pairs << " pairs are not tokens x top " << top_k);
  LS_CHECK(experts >= 1 && experts <= kMaxRoutedExperts,
           "group_by_expert: " << experts << " experts (the GPU grouping takes 1 to " << kMaxRoutedExperts << ")");
  launch(ctx, group_by_expert_kernel, 1u, kGroupThreads, expert_ids, static_cast<int>(pairs), static_cast<int>(top_k),
         experts, g);
}

template <HalfFloat W>
void gather_rows(GpuContext& ctx, const W* x, const int* rows, std::int64_t n, std::int64_t width, W* out) {
  if (n == 0) return;
  launch(ctx, gather_rows_kernel<device_t<W>>, static_cast<unsigned>(n), kCombineThreads, on_device(x), rows, width,
         on_device(out));
}

void combine_experts(GpuContext& ctx, const float* y, const int* position, const float* weights, std::int64_t tokens,
                     std::int64_t top_k, std::int64_t width, float* out) {
  if (tokens == 0 || width == 0) return;
  LS_CHECK(tokens > 0 && tokens <= INT_MAX && top_k >= 0 && top_k <= INT_MAX && width > 0,
           "combine_experts: " << tokens << " tokens, top " << top_k << ", width " << width);
  const unsigned column_blocks = std::min(blocks_for(width, kCombineThreads), 65535u);  // grid.y's limit
  launch(ctx, combine_experts_kernel, dim3(static_cast<unsigned>(tokens), column_blocks), kCombineThreads, y, position,
         weights, static_cast<int>(top_k), width, out);
}

template void gather_rows<bf16>(GpuContext&, const bf16*, const int*, std::int64_t, std::int64_t, bf16*);
template void gather_rows<fp16>(GpuContext&, const fp16*, const int*, std::int64_t, std::int64_t, fp16*);

}  // namespace lockstep::cuda
