// cuda::sample_rows (see kernels/sampling.h): a thread-block cluster per row (Hopper: up to 8
// blocks, one SM each, sharing their shared memory), each block a contiguous part of the row's
// ids. Passes over the row: the argmax; the weights' float bits (keys) into scratch; then each
// cut point (top-k by count, top-p and the draw by mass) by a radix select: 4 levels of a
// 256-bin histogram of the keys' next 8 bits over the current prefix (integer counts or masses,
// so the atomics and the blocks' sums give the same totals whatever the order), the bin where
// the running total from the top reaches the target, and at the end the ties of the exact key
// taken in id order. A prefix of the order (w descending, id ascending) is a Cut: the elements
// whose key is above cut.key, or equal to it at an id up to cut.index.
//
// Why a cluster: one block per row (the first version) ran a 152k row's ~12 passes on one SM,
// each a chain of L2 round trips: top-p took 934 us for one row on an H200, a fifth of a
// batch-1 decode step. The blocks of a cluster exchange their partial sums, histograms and
// argmax through distributed shared memory (every block sums them in rank order, so all take
// the same decisions); big batches, which fill the GPU with rows alone, get clusters of one.
#include <cooperative_groups.h>
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
constexpr int kMaxCluster = 8;  // the portable cluster size
constexpr int kLoads = 4;       // keys a thread loads before it uses any

// The blocks of this row: a cluster on Hopper and newer, else the block alone. sync() is a
// barrier over them that also orders their shared-memory writes before it against the reads
// after it; at(p, r) is the shared variable p of block r.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
struct Row {
  __device__ static int rank() { return static_cast<int>(cooperative_groups::this_cluster().block_rank()); }
  __device__ static int size() { return static_cast<int>(cooperative_groups::this_cluster().num_blocks()); }
  __device__ static void sync() { cooperative_groups::this_cluster().sync(); }
  template <typename T>
  __device__ static T* at(T* p, int rank) {
    return cooperative_groups::this_cluster().map_shared_rank(p, static_cast<unsigned>(rank));
  }
};
#else
struct Row {
  __device__ static int rank() { return 0; }
  __device__ static int size() { return 1; }
  __device__ static void sync() { __syncthreads(); }
  template <typename T>
  __device__ static T* at(T* p, int) { return p; }
};
#endif

__device__ __forceinline__ u64 mass_of(unsigned key) { return __float2ull_rz(__uint_as_float(key) * 0x1p45f); }

struct Cut {
  unsigned key;
  int index;
};
__device__ __forceinline__ bool in_cut(unsigned key, int i, Cut c) {
  return key > c.key || (key == c.key && i <= c.index);
}

// What the blocks of a row publish to each other comes in two slots, alternating with each
// exchange: a block writes slot x % 2, syncs the row, reads everyone's slot x % 2; its next
// write to that slot is two exchanges on, after a sync no block passes before it has read.
struct Published {
  u64 total;
  u64 hist[256];
  int found;
  float best;
  int best_i;
};

struct Shared {
  u64 red[kWarps];
  u64 warp_hist[kWarps][256];  // a histogram per warp: a flat row puts most keys in a few bins
  u64 hist[256];               // the row's histogram (every block's, summed)
  Published pub[2];
  u64 base;
  int digit;
};

// The ids a block owns, [lo, hi), and the contiguous run [clo, chi) of them a thread takes
// where order matters (ties, the unfiltered draw).
struct Part {
  int lo, hi, clo, chi;
};
__device__ Part part_of(int vocab) {
  const int per_block = (vocab + Row::size() - 1) / Row::size();
  Part p;
  p.lo = min(vocab, Row::rank() * per_block);
  p.hi = min(vocab, p.lo + per_block);
  const int per_thread = (p.hi - p.lo + kThreads - 1) / kThreads;
  p.clo = min(p.hi, p.lo + static_cast<int>(threadIdx.x) * per_thread);
  p.chi = min(p.hi, p.clo + per_thread);
  return p;
}

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

// Publishes the block's total (every thread passes the same); returns the sum over the blocks
// ranked before this one, and *all the row's.
__device__ u64 exchange_totals(u64 block_total, Shared& s, int& x, u64* all) {
  Published& mine = s.pub[x++ % 2];
  if (threadIdx.x == 0) mine.total = block_total;
  Row::sync();
  u64 before = 0, sum = 0;
  for (int r = 0; r < Row::size(); ++r) {
    const u64 t = Row::at(&mine, r)->total;
    if (r < Row::rank()) before += t;
    sum += t;
  }
  *all = sum;
  return before;
}

// f(key, id) for the block's part of the row, the threads strided over it (coalesced), each
// loading kLoads keys before it uses any.
template <typename F>
__device__ void for_each_key(const unsigned* keys, Part part, F&& f) {
  for (int i0 = part.lo + threadIdx.x; i0 < part.hi; i0 += kLoads * kThreads) {
    unsigned k[kLoads];
#pragma unroll
    for (int u = 0; u < kLoads; ++u) k[u] = i0 + u * kThreads < part.hi ? keys[i0 + u * kThreads] : 0u;
#pragma unroll
    for (int u = 0; u < kLoads; ++u)
      if (i0 + u * kThreads < part.hi) f(k[u], i0 + u * kThreads);
  }
}

// The first id of the row, in id order (a thread's run in order, the threads' in thread order,
// the blocks' in rank order), where the running sum of weight(key, id) reaches
// target_of(the row's total); -1 if none does. Every thread of every block gets it.
template <typename Weight, typename Target>
__device__ int first_reaching(const unsigned* keys, Part part, Weight&& weight, Target&& target_of, Shared& s, int& x) {
  u64 mine = 0;
  for (int i = part.clo; i < part.chi; ++i) mine += weight(keys[i], i);
  u64 block_total = 0, total = 0;
  const u64 before = block_exclusive_scan(mine, s, &block_total) + exchange_totals(block_total, s, x, &total);
  const u64 target = target_of(total);
  Published& pub = s.pub[x++ % 2];
  if (threadIdx.x == 0) pub.found = -1;
  __syncthreads();
  if (before < target && target <= before + mine) {
    u64 cum = before;
    for (int i = part.clo; i < part.chi; ++i)
      if ((cum += weight(keys[i], i)) >= target) {
        pub.found = i;
        break;
      }
  }
  Row::sync();
  int index = -1;
  for (int r = 0; r < Row::size(); ++r) index = max(index, Row::at(&pub, r)->found);
  return index;
}

// The row's count (by_mass false) or mass of the elements in the cut.
__device__ u64 total_in(const unsigned* keys, Part part, Cut cut, bool by_mass, Shared& s, int& x) {
  u64 mine = 0;
  for_each_key(keys, part, [&](unsigned key, int i) {
    if (in_cut(key, i, cut)) mine += by_mass ? mass_of(key) : 1ull;
  });
  u64 all = 0;
  exchange_totals(block_sum(mine, s), s, x, &all);
  return all;
}

// The cut at the first element of `within` (in the order) where the running count or mass
// reaches target (1 <= target <= total_in(within)).
__device__ Cut select(const unsigned* keys, Part part, Cut within, bool by_mass, u64 target, Shared& s, int& x) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  unsigned prefix = 0;  // the key's bits found so far
  u64 base = 0;         // count or mass of the elements of `within` ahead of those matching prefix
  for (int level = 0; level < 4; ++level) {
    const int shift = 24 - 8 * level;
    u64* mine = s.warp_hist[warp];
    for (int b = lane; b < 256; b += kWarp) mine[b] = 0;
    __syncwarp();
    for_each_key(keys, part, [&](unsigned key, int i) {
      if (in_cut(key, i, within) && (level == 0 || key >> (shift + 8) == prefix >> (shift + 8)))
        atomicAdd(&mine[key >> shift & 255u], by_mass ? mass_of(key) : 1ull);
    });
    __syncthreads();
    Published& pub = s.pub[x++ % 2];
    for (int b = threadIdx.x; b < 256; b += kThreads) {  // the block's: the warps' summed in warp order
      u64 sum = 0;
      for (int w = 0; w < kWarps; ++w) sum += s.warp_hist[w][b];
      pub.hist[b] = sum;
    }
    Row::sync();
    for (int b = threadIdx.x; b < 256; b += kThreads) {  // the row's: the blocks' summed in rank order
      u64 sum = 0;
      for (int r = 0; r < Row::size(); ++r) sum += Row::at(&pub, r)->hist[b];
      s.hist[b] = sum;
    }
    __syncthreads();
    if (warp == 0) {
      // From the top bin down: where the running total reaches the target. Lane l sums bins
      // 255 - 8l down to 248 - 8l; a scan over the lanes finds the lane, the lane its bin.
      u64 eight = 0;
#pragma unroll
      for (int j = 0; j < 8; ++j) eight += s.hist[255 - 8 * lane - j];
      u64 inclusive = eight;
      for (int o = 1; o < kWarp; o *= 2) {
        const u64 n = __shfl_up_sync(0xffffffffu, inclusive, o);
        if (lane >= o) inclusive += n;
      }
      const unsigned reached = __ballot_sync(0xffffffffu, base + inclusive >= target);
      // Not reached (the callers' bounds rule it out): bin 0 past everything, as a serial walk ends.
      if (reached == 0u && lane == kWarp - 1) s.digit = 0, s.base = base + inclusive;
      const int first = reached ? __ffs(static_cast<int>(reached)) - 1 : -1;
      if (lane == first) {
        u64 acc = base + inclusive - eight;
        int digit = 255 - 8 * lane - 7;
        for (int j = 0; j < 8; ++j) {
          const int b = 255 - 8 * lane - j;
          if (acc + s.hist[b] >= target) {
            digit = b;
            break;
          }
          acc += s.hist[b];
        }
        s.digit = digit, s.base = acc;
      }
    }
    __syncthreads();
    prefix |= static_cast<unsigned>(s.digit) << shift;
    base = s.base;
  }
  // prefix is the exact key; the target lies among its ties (equal masses), taken in id order.
  const u64 tie_mass = mass_of(prefix);
  const u64 need = !by_mass ? target - base : tie_mass > 0 ? (target - base + tie_mass - 1) / tie_mass : 1;
  const int index = first_reaching(
      keys, part, [&](unsigned key, int i) -> u64 { return key == prefix && in_cut(prefix, i, within); },
      [need](u64) { return need; }, s, x);
  return Cut{prefix, index};
}

// The row's token under p (see kernels/sampling.h), the same in every thread of every block.
__device__ int sample_row(const float* logits, int row, int rows, int vocab, int slices, int slice_width,
                          const RowSampling& p, unsigned* keys, Shared& s, int& x) {
  const Part part = part_of(vocab);
  // The argmax (lowest id on ties; NaN never wins; an all -inf/NaN row gives 0): the block's,
  // then the row's from the blocks' in rank order.
  float best = -INFINITY;
  int best_i = INT_MAX;
  for (int sl = 0; sl < slices; ++sl) {
    const float* slice = logits + (static_cast<std::int64_t>(sl) * rows + row) * slice_width;
    const int lo = max(part.lo, sl * slice_width), hi = min(part.hi, (sl + 1) * slice_width);
    for (int i = lo + static_cast<int>(threadIdx.x); i < hi; i += kThreads)
      if (slice[i - sl * slice_width] > best) best = slice[i - sl * slice_width], best_i = i;
  }
  block_argmax(best, best_i);
  {
    Published& pub = s.pub[x++ % 2];
    if (threadIdx.x == 0) pub.best = best, pub.best_i = best_i;
    Row::sync();
    best = -INFINITY, best_i = INT_MAX;
    for (int r = 0; r < Row::size(); ++r) {
      const Published* o = Row::at(&pub, r);
      if (o->best > best || (o->best == best && o->best_i < best_i)) best = o->best, best_i = o->best_i;
    }
    if (best_i == INT_MAX) best_i = 0;
  }
  if (p.temperature < 1e-5f) return best_i;
  // The weights' bits: exp in double rounded to float, as the CPU reference computes them.
  for (int sl = 0; sl < slices; ++sl) {
    const float* slice = logits + (static_cast<std::int64_t>(sl) * rows + row) * slice_width;
    const int lo = max(part.lo, sl * slice_width), hi = min(part.hi, (sl + 1) * slice_width);
    for (int i = lo + static_cast<int>(threadIdx.x); i < hi; i += kThreads) {
      const float w = static_cast<float>(exp(static_cast<double>((slice[i - sl * slice_width] - best) / p.temperature)));
      keys[i] = isnan(w) ? 0u : __float_as_uint(w);
    }
  }
  __syncthreads();  // a block reads only the keys it wrote: no sync across the row needed
  if (p.min_p <= 0.0f && p.top_k <= 0 && p.top_p >= 1.0f) {
    // No filter: the draw in id order.
    const int index = first_reaching(
        keys, part, [](unsigned key, int) { return mass_of(key); },
        [&](u64 total) { return static_cast<u64>(floor(p.u * static_cast<double>(total))) + 1; }, s, x);
    return index >= 0 ? index : best_i;  // out of reach (rounding): the argmax, as the host sampler
  }
  const Cut everything{0u, vocab - 1};
  Cut cut = p.min_p > 0.0f ? Cut{__float_as_uint(p.min_p), vocab - 1} : everything;
  const u64 count = p.min_p > 0.0f ? total_in(keys, part, cut, false, s, x) : static_cast<u64>(vocab);
  if (count == 0) return best_i;  // min_p > 1
  if (p.top_k > 0 && static_cast<u64>(p.top_k) < count) cut = select(keys, part, cut, false, p.top_k, s, x);
  if (p.top_p < 1.0f) {
    const u64 total = total_in(keys, part, cut, true, s, x);
    const u64 target = static_cast<u64>(ceil(static_cast<double>(p.top_p) * static_cast<double>(total)));
    if (target == 0) cut = select(keys, part, cut, false, 1, s, x);  // the best alone
    else if (target <= total) cut = select(keys, part, cut, true, target, s, x);
  }
  const u64 mass = total_in(keys, part, cut, true, s, x);
  const u64 target = static_cast<u64>(floor(p.u * static_cast<double>(mass))) + 1;
  const Cut drawn = target <= mass ? select(keys, part, cut, true, target, s, x)
                                   : select(keys, part, cut, false, total_in(keys, part, cut, false, s, x), s, x);
  return drawn.index;
}

__global__ void __launch_bounds__(kThreads)
    sample_rows_kernel(const float* logits, int rows, int vocab, int slices, int slice_width,
                       const RowSampling* params, unsigned* keys_all, int* ids) {
  dependent_launch_enter();
  __shared__ Shared s;
  const int row = static_cast<int>(blockIdx.x) / Row::size();
  int x = 0;  // exchanges so far (the same count in every block of the row)
  const int id = sample_row(logits, row, rows, vocab, slices, slice_width, params[row],
                            keys_all + static_cast<std::int64_t>(row) * vocab, s, x);
  if (Row::rank() == 0 && threadIdx.x == 0) ids[row] = id;
  Row::sync();  // no block leaves while another may still read its shared memory
}

}  // namespace

void sample_rows(GpuContext& ctx, const float* logits, std::int64_t rows, std::int64_t vocab, std::int64_t slices,
                 std::int64_t slice_width, const RowSampling* params, int* ids, int cluster) {
  LS_CHECK(vocab > 0 && vocab <= kMaxSamplingVocab, "sample_rows: vocabulary " << vocab << " outside 1.."
                                                    << kMaxSamplingVocab << " (integer masses)");
  LS_CHECK(slices >= 1 && slice_width >= 1 && slices * slice_width >= vocab,
           "sample_rows: " << slices << " slices of " << slice_width << " do not cover " << vocab);
  LS_CHECK(cluster >= 0 && cluster <= kMaxCluster && (cluster & (cluster - 1)) == 0,
           "sample_rows: cluster " << cluster << " is not 0 (chosen here) or a power of 2 up to " << kMaxCluster);
  if (rows == 0) return;
  LS_CHECK(rows * kMaxCluster <= INT32_MAX, "sample_rows: " << rows << " rows");
  // Blocks per row: a power of 2 up to 8 that keeps the grid within one block per SM (on an
  // H200's 132 SMs: 8 for up to 16 rows, 1 from 67 rows on), on GPUs with clusters.
  if (cluster == 0) {
    cluster = 1;
    while (cluster < kMaxCluster && rows * cluster * 2 <= ctx.sm_count()) cluster *= 2;
  }
  if (ctx.compute_capability() < 90) cluster = 1;
  auto* keys = static_cast<unsigned*>(ctx.scratch(static_cast<std::size_t>(rows * vocab) * sizeof(unsigned)));
  cudaLaunchAttribute attributes[2]{};
  attributes[0].id = cudaLaunchAttributeClusterDimension;
  attributes[0].val.clusterDim.x = static_cast<unsigned>(cluster);
  attributes[0].val.clusterDim.y = 1;
  attributes[0].val.clusterDim.z = 1;
  attributes[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attributes[1].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(rows * cluster));
  config.blockDim = dim3(kThreads);
  config.stream = ctx.stream();
  config.attrs = ctx.compute_capability() >= 90 ? attributes : attributes + 1;
  config.numAttrs = (ctx.compute_capability() >= 90 ? 1 : 0) + (ctx.dependent_launch() ? 1 : 0);
  LS_CUDA_CHECK(cudaLaunchKernelEx(&config, sample_rows_kernel, logits, static_cast<int>(rows), static_cast<int>(vocab),
                                   static_cast<int>(slices), static_cast<int>(slice_width), params, keys, ids));
}

}  // namespace lockstep::cuda
