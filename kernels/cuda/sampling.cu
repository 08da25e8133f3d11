// cuda::sample_rows (see kernels/sampling.h): a block per row. Passes over the row: the argmax;
// the weights' float bits (keys) into scratch; then each cut point (top-k by count, top-p and the
// draw by mass) by a radix select: 4 levels of a 256-bin histogram of the keys' next 8 bits over
// the current prefix (integer counts or masses, so shared-memory atomics sum the same whatever
// the order), the bin where the running total from the top reaches the target, and at the end
// the ties of the exact key taken in id order. A prefix of the order (w descending, id
// ascending) is a Cut: the elements whose key is above cut.key, or equal to it at an id up to
// cut.index.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/fatal.h"
#include "kernels/sampling.h"

namespace lockstep::cuda {
namespace {

using u64 = unsigned long long;
constexpr int kThreads = 512, kWarps = kThreads / kWarp;

__device__ __forceinline__ u64 mass_of(unsigned key) { return __float2ull_rz(__uint_as_float(key) * 0x1p45f); }

struct Cut {
  unsigned key;
  int index;
};
__device__ __forceinline__ bool in_cut(unsigned key, int i, Cut c) {
  return key > c.key || (key == c.key && i <= c.index);
}

struct Shared {
  u64 red[kWarps];
  u64 warp_hist[kWarps][256];  // a histogram per warp: a flat row puts most keys in a few bins
  u64 hist[256];
  u64 base;
  int digit, index, best;
  float max_logit;
};

// The block's sum of v (every thread gets it).
__device__ u64 block_sum(u64 v, Shared& s) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();  // the last use of red is read
  if (threadIdx.x % kWarp == 0) s.red[threadIdx.x / kWarp] = v;
  __syncthreads();
  u64 total = 0;
  for (int w = 0; w < kWarps; ++w) total += s.red[w];
  return total;
}

// The sum of v over the threads before this one (in thread order); *total the block's.
__device__ u64 block_exclusive_scan(u64 v, Shared& s, u64* total) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  u64 inclusive = v;
  for (int o = 1; o < kWarp; o *= 2) {
    const u64 n = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += n;
  }
  __syncthreads();
  if (lane == kWarp - 1) s.red[warp] = inclusive;
  __syncthreads();
  u64 before = 0, all = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += s.red[w];
    all += s.red[w];
  }
  *total = all;
  return before + inclusive - v;
}

// Count (by_mass false) or mass of the row's elements in the cut.
__device__ u64 total_in(const unsigned* keys, int vocab, Cut cut, bool by_mass, Shared& s) {
  u64 mine = 0;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const unsigned key = keys[i];
    if (in_cut(key, i, cut)) mine += by_mass ? mass_of(key) : 1ull;
  }
  return block_sum(mine, s);
}

// The cut at the first element of `within` (in the order) where the running count or mass
// reaches target (1 <= target <= total_in(within)).
__device__ Cut select(const unsigned* keys, int vocab, Cut within, bool by_mass, u64 target, Shared& s) {
  unsigned prefix = 0;  // the key's bits found so far
  u64 base = 0;         // count or mass of the elements of `within` ahead of those matching prefix
  for (int level = 0; level < 4; ++level) {
    const int shift = 24 - 8 * level;
    u64* mine = s.warp_hist[threadIdx.x / kWarp];
    for (int b = threadIdx.x % kWarp; b < 256; b += kWarp) mine[b] = 0;
    __syncwarp();
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const unsigned key = keys[i];
      if (!in_cut(key, i, within) || (level > 0 && key >> (shift + 8) != prefix >> (shift + 8))) continue;
      atomicAdd(&mine[key >> shift & 255u], by_mass ? mass_of(key) : 1ull);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < 256; b += kThreads) {  // the warps' histograms summed (in warp order)
      u64 sum = 0;
      for (int w = 0; w < kWarps; ++w) sum += s.warp_hist[w][b];
      s.hist[b] = sum;
    }
    __syncthreads();
    if (threadIdx.x == 0) {  // from the top bin down: where the running total reaches the target
      u64 acc = base;
      int digit = 0;
      for (int b = 255; b >= 0; --b) {
        if (acc + s.hist[b] >= target) {
          digit = b;
          break;
        }
        acc += s.hist[b];
      }
      s.digit = digit, s.base = acc;
    }
    __syncthreads();
    prefix |= static_cast<unsigned>(s.digit) << shift;
    base = s.base;
  }
  // prefix is the exact key; the target lies among its ties (equal masses), taken in id order.
  const u64 tie_mass = mass_of(prefix);
  const u64 need = !by_mass ? target - base : tie_mass > 0 ? (target - base + tie_mass - 1) / tie_mass : 1;
  const int chunk = (vocab + kThreads - 1) / kThreads, lo = threadIdx.x * chunk, hi = min(vocab, lo + chunk);
  u64 mine = 0;
  for (int i = lo; i < hi; ++i) mine += keys[i] == prefix && in_cut(prefix, i, within);
  u64 ties = 0;
  const u64 before = block_exclusive_scan(mine, s, &ties);
  if (threadIdx.x == 0) s.index = -1;
  __syncthreads();
  if (before < need && need <= before + mine) {
    u64 c = before;
    for (int i = lo; i < hi; ++i)
      if (keys[i] == prefix && in_cut(prefix, i, within) && ++c == need) {
        s.index = i;
        break;
      }
  }
  __syncthreads();
  const Cut cut{prefix, s.index};
  __syncthreads();  // s.index is read before the next use
  return cut;
}

__global__ void __launch_bounds__(kThreads)
    sample_rows_kernel(const float* logits, int rows, int vocab, int slices, int slice_width,
                       const RowSampling* params, unsigned* keys_all, int* ids) {
  dependent_launch_enter();
  __shared__ Shared s;
  const int row = blockIdx.x;
  const RowSampling p = params[row];
  // The argmax (lowest id on ties; NaN never wins; an all -inf/NaN row gives 0), over the slices.
  float best = -INFINITY;
  int best_i = INT_MAX;
  for (int sl = 0; sl < slices; ++sl) {
    const float* part = logits + (static_cast<std::int64_t>(sl) * rows + row) * slice_width;
    const int width = min(slice_width, vocab - sl * slice_width);
    for (int j = threadIdx.x; j < width; j += kThreads)
      if (part[j] > best) best = part[j], best_i = sl * slice_width + j;
  }
  block_argmax(best, best_i);
  if (threadIdx.x == 0) {
    s.best = best_i == INT_MAX ? 0 : best_i;
    s.max_logit = best;
  }
  __syncthreads();
  if (p.temperature < 1e-5f) {
    if (threadIdx.x == 0) ids[row] = s.best;
    return;
  }
  // The weights' bits: exp in double rounded to float, as the CPU reference computes them.
  unsigned* keys = keys_all + static_cast<std::int64_t>(row) * vocab;
  const float max_logit = s.max_logit;
  for (int sl = 0; sl < slices; ++sl) {
    const float* part = logits + (static_cast<std::int64_t>(sl) * rows + row) * slice_width;
    const int width = min(slice_width, vocab - sl * slice_width);
    for (int j = threadIdx.x; j < width; j += kThreads) {
      const float w = static_cast<float>(exp(static_cast<double>((part[j] - max_logit) / p.temperature)));
      keys[sl * slice_width + j] = isnan(w) ? 0u : __float_as_uint(w);
    }
  }
  __syncthreads();
  const Cut everything{0u, vocab - 1};
  if (p.min_p <= 0.0f && p.top_k <= 0 && p.top_p >= 1.0f) {
    // No filter: the draw in id order, over contiguous chunks (a thread's in order, the
    // threads' in thread order).
    const int chunk = (vocab + kThreads - 1) / kThreads, lo = threadIdx.x * chunk, hi = min(vocab, lo + chunk);
    u64 mine = 0;
    for (int i = lo; i < hi; ++i) mine += mass_of(keys[i]);
    u64 total = 0;
    const u64 before = block_exclusive_scan(mine, s, &total);
    const u64 target = static_cast<u64>(floor(p.u * static_cast<double>(total))) + 1;
    if (threadIdx.x == 0) s.index = s.best;  // out of reach (rounding): the argmax, as the host sampler
    __syncthreads();
    if (before < target && target <= before + mine) {
      u64 cum = before;
      for (int i = lo; i < hi; ++i)
        if ((cum += mass_of(keys[i])) >= target) {
          s.index = i;
          break;
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) ids[row] = s.index;
    return;
  }
  Cut cut = p.min_p > 0.0f ? Cut{__float_as_uint(p.min_p), vocab - 1} : everything;
  const u64 count = total_in(keys, vocab, cut, false, s);
  if (count == 0) {  // min_p > 1
    if (threadIdx.x == 0) ids[row] = s.best;
    return;
  }
  if (p.top_k > 0 && static_cast<u64>(p.top_k) < count) cut = select(keys, vocab, cut, false, p.top_k, s);
  if (p.top_p < 1.0f) {
    const u64 total = total_in(keys, vocab, cut, true, s);
    const u64 target = static_cast<u64>(ceil(static_cast<double>(p.top_p) * static_cast<double>(total)));
    if (target == 0) cut = select(keys, vocab, cut, false, 1, s);  // the best alone
    else if (target <= total) cut = select(keys, vocab, cut, true, target, s);
  }
  const u64 mass = total_in(keys, vocab, cut, true, s);
  const u64 target = static_cast<u64>(floor(p.u * static_cast<double>(mass))) + 1;
  const Cut drawn = target <= mass ? select(keys, vocab, cut, true, target, s)
                                   : select(keys, vocab, cut, false, total_in(keys, vocab, cut, false, s), s);
  if (threadIdx.x == 0) ids[row] = drawn.index;
}

}  // namespace

void sample_rows(GpuContext& ctx, const float* logits, std::int64_t rows, std::int64_t vocab, std::int64_t slices,
                 std::int64_t slice_width, const RowSampling* params, int* ids) {
  LS_CHECK(vocab > 0 && vocab <= kMaxSamplingVocab, "sample_rows: vocabulary " << vocab << " outside 1.."
                                                    << kMaxSamplingVocab << " (integer masses)");
  LS_CHECK(slices >= 1 && slice_width >= 1 && slices * slice_width >= vocab,
           "sample_rows: " << slices << " slices of " << slice_width << " do not cover " << vocab);
  if (rows == 0) return;
  auto* keys = static_cast<unsigned*>(ctx.scratch(static_cast<std::size_t>(rows * vocab) * sizeof(unsigned)));
  launch(ctx, sample_rows_kernel, static_cast<unsigned>(rows), kThreads, logits, static_cast<int>(rows),
         static_cast<int>(vocab), static_cast<int>(slices), static_cast<int>(slice_width), params, keys, ids);
}

}  // namespace lockstep::cuda
