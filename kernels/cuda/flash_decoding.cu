// Flash-decoding for small decode steps (kernels/cuda/flash_decoding.h). A batch-1 decode step of
// a 7B model reads ~0.5 MB of K/V a layer: its attention is a latency chain, not a bandwidth
// problem. The general kernel (paged_attention.cu) walks tiles with a barrier between each phase
// and sums its warps' partial outputs through shared memory; it took ~16 us a layer on an H200.
// Here a block's split is short enough to be staged whole, so the chain is: the split's K and V
// rows copied into shared memory (all but the newest position before the dependent-launch wait,
// overlapping the kernels before), q, the scores (a thread per position and 1-2 heads), then a
// warp per query head does its softmax and its values with no further barrier (a lane owns
// head_dim / 32 output dims and sums every position itself), and the splits are merged by the
// last block to finish (split_kv_merge.cuh).
#include "kernels/cuda/flash_decoding.h"

#include <cuda_pipeline.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/split_kv_merge.cuh"
#include "kernels/fatal.h"

namespace lockstep::cuda {
namespace {

constexpr int kThreads = 256, kWarps = kThreads / kWarp;
constexpr int kGroup = kWarps;  // query heads a block (one KV head's, or a chunk of them): a warp each

// Positions a split holds at most: its K and V rows, q and the scores fit the 48 KB of static
// shared memory a block gets (41 KB at head_dim 128, 43 KB at 256).
__host__ __device__ constexpr int split_capacity(int head_dim) { return head_dim <= 128 ? 64 : 32; }

// kDims (2, 4 or 8) values of T as floats, one load: T 16-bit (4, 8 or 16 bytes) or fp8 (2, 4 or
// 8 bytes).
template <typename T, int kDims>
__device__ __forceinline__ void load_dims(const T* p, float* f) {
  if constexpr (sizeof(T) == 1) {
    if constexpr (kDims == 2) {
      unpack_x2<__half>(fp8x2_to_half2<T>(*reinterpret_cast<const unsigned short*>(p)), f[0], f[1]);
    } else if constexpr (kDims == 4) {
      unpack_fp8x4<T>(*reinterpret_cast<const unsigned*>(p), f);
    } else {
      const uint2 u = *reinterpret_cast<const uint2*>(p);
      unpack_fp8x4<T>(u.x, f);
      unpack_fp8x4<T>(u.y, f + 4);
    }
  } else if constexpr (kDims == 2) {
    unpack_x2<T>(*reinterpret_cast<const unsigned*>(p), f[0], f[1]);
  } else if constexpr (kDims == 4) {
    unpack_x4<T>(*reinterpret_cast<const uint2*>(p), f);
  } else {
    unpack_x8<T>(*reinterpret_cast<const uint4*>(p), f);
  }
}

// One block per (token, KV head or chunk of its query heads, split). T: the cache's device type,
// __nv_bfloat16, __half or an fp8 format; D: head_dim (64, 128 or 256).
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) flash_decoding_kernel(const float* q, const T* k_cache, const T* v_cache,
                                                                  int heads, int kv_heads, int block_size,
                                                                  const int* seq_of, const int* pos,
                                                                  const int* block_tables, int max_blocks, float scale,
                                                                  float* out, float* partial, int* counters) {
  dependent_launch_trigger();
  constexpr int kCapacity = split_capacity(D);
  constexpr int kPer = 16 / sizeof(T);  // values a 16-byte piece
  constexpr int kRow = D + kPer;  // padded by 16 bytes: 8 lanes' 16-byte reads of 8 rows hit distinct banks
  constexpr int kPieces = D / kPer;  // 16-byte copies a row
  constexpr int kLaneDims = D / kWarp;
  constexpr int kHeadsAThread = kGroup * kCapacity / kThreads;  // scores: a thread per position and 1-2 heads
  static_assert(kHeadsAThread >= 1 && kGroup * kCapacity == kHeadsAThread * kThreads);
  static_assert(D >= kMaxSplits, "the merge's weights reuse q_s");
  __shared__ __align__(16) T k_s[kCapacity][kRow];
  __shared__ __align__(16) T v_s[kCapacity][kRow];
  __shared__ __align__(16) float q_s[kGroup][D];  // then the merge's weights
  __shared__ float p_s[kGroup][kCapacity];        // scores, then e^(s - m)
  __shared__ std::int64_t slot_s[kCapacity];      // the split's KV-cache slots
  // Counts, positions and rows fit int (32-bit math: a decode launch runs its code once, cold).
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp;
  const int group = heads / kv_heads, chunks = (group + kGroup - 1) / kGroup;
  const int t = blockIdx.x, kvh = static_cast<int>(blockIdx.y) / chunks;
  const int h0 = kvh * group + static_cast<int>(blockIdx.y) % chunks * kGroup;  // the block's first query head
  const int n = min(kGroup, kvh * group + group - h0);
  const int row = kv_heads * D;
  const int* table = block_tables + static_cast<std::int64_t>(seq_of[t]) * max_blocks;
  const int context = pos[t] + 1;
  const int split_len = (context + static_cast<int>(gridDim.z) - 1) / static_cast<int>(gridDim.z);  // <= kCapacity
  const int begin = static_cast<int>(blockIdx.z) * split_len;
  const int count = max(0, min(context, begin + split_len) - begin);  // 0: a split past this token's context

  // The split's slots from the block table (a step input), a thread a position, once.
  if (tid < count) {
    const int p = begin + tid;
    slot_s[tid] = static_cast<std::int64_t>(table[p / block_size]) * block_size + p % block_size;
  }
  __syncthreads();
  // Copies the split's positions [from, to) into k_s / v_s, a 16-byte piece a thread at a time
  // (rolled: the copies stay in flight without registers, so unrolling gains nothing but code).
  auto stage = [&](int from, int to) {
#pragma unroll 1
    for (int e = from * kPieces + tid; e < to * kPieces; e += kThreads) {
      const int i = e / kPieces, c = e % kPieces * kPer;
      const std::int64_t at = slot_s[i] * row + kvh * D + c;
      __pipeline_memcpy_async(&k_s[i][c], k_cache + at, 16);
      __pipeline_memcpy_async(&v_s[i][c], v_cache + at, 16);
    }
    __pipeline_commit();
  };
  // Before the wait, the positions no kernel of this step writes (all but the token's newest);
  // after it, the newest and q.
  const int early = max(0, min(count, context - 1 - begin));
  stage(0, early);
  dependent_launch_wait();
  stage(early, count);
  for (int e = tid; e < n * (D / 4); e += kThreads) {
    const int i = e / (D / 4), d = e % (D / 4) * 4;
    *reinterpret_cast<float4*>(&q_s[i][d]) =
        *reinterpret_cast<const float4*>(q + (static_cast<std::int64_t>(t) * heads + h0 + i) * D + d);
  }
  __pipeline_wait_prior(0);
  __syncthreads();

  // Scores: s[i][p] = q_i . k_p * scale; -inf past the split.
  {
    const int p = tid % kCapacity, i0 = tid / kCapacity * kHeadsAThread;
    float dot[kHeadsAThread];
#pragma unroll
    for (int j = 0; j < kHeadsAThread; ++j) dot[j] = 0.0f;
    if (p < count && i0 < n) {
#pragma unroll 4
      for (int d = 0; d < D; d += 8) {
        float k8[8];
        load_dims<T, 8>(&k_s[p][d], k8);
#pragma unroll
        for (int j = 0; j < kHeadsAThread; ++j) {
          const float4 a = *reinterpret_cast<const float4*>(&q_s[i0 + j][d]);
          const float4 b = *reinterpret_cast<const float4*>(&q_s[i0 + j][d + 4]);
          dot[j] += a.x * k8[0] + a.y * k8[1] + a.z * k8[2] + a.w * k8[3] + b.x * k8[4] + b.y * k8[5] +
                    b.z * k8[6] + b.w * k8[7];
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kHeadsAThread; ++j) p_s[i0 + j][p] = p < count ? dot[j] * scale : -INFINITY;
  }
  __syncthreads();

  // Warp i: head i's softmax over the split, then its values, lane l owning dims l * kLaneDims ...
  if (warp < n) {
    float* s = p_s[warp];
    float m = -INFINITY, l = 0.0f;
#pragma unroll
    for (int p = lane; p < kCapacity; p += kWarp) m = fmaxf(m, s[p]);
    m = warp_max(m);
    if (count > 0) {  // else m = -inf and l = 0: an empty partial, which the merge skips
#pragma unroll
      for (int p = lane; p < kCapacity; p += kWarp) {
        const float e = expf(s[p] - m);
        s[p] = e;
        l += e;
      }
      l = warp_sum(l);
    }
    __syncwarp();
    float acc[kLaneDims];
#pragma unroll
    for (int k = 0; k < kLaneDims; ++k) acc[k] = 0.0f;
#pragma unroll 4
    for (int p = 0; p < count; ++p) {
      const float w = s[p];
      float v[kLaneDims];
      load_dims<T, kLaneDims>(&v_s[p][lane * kLaneDims], v);
#pragma unroll
      for (int k = 0; k < kLaneDims; ++k) acc[k] += w * v[k];
    }
    const std::int64_t th = static_cast<std::int64_t>(t) * heads + h0 + warp;
    if (gridDim.z == 1) {
      float* o = out + th * D + lane * kLaneDims;
      const float inv = 1.0f / l;
#pragma unroll
      for (int k = 0; k < kLaneDims; ++k) o[k] = acc[k] * inv;
    } else {  // partial[(t, h, split)] = {acc[D], m, l}
      float* ph = partial + (th * gridDim.z + blockIdx.z) * partial_stride(D);
#pragma unroll
      for (int k = 0; k < kLaneDims; ++k) ph[lane * kLaneDims + k] = acc[k];
      if (lane == 0) ph[D] = m, ph[D + 1] = l;
    }
  }
  if (gridDim.z > 1)
    merge_splits_if_last(partial, counters + t * gridDim.y + blockIdx.y, static_cast<std::int64_t>(t) * heads + h0,
                         n, D, &q_s[0][0], out);
}

// Blocks of flash_decoding_kernel<_, D> the GPU holds at once (the same for bf16 and fp16).
template <int D>
std::int64_t resident_blocks(const GpuContext& ctx) {
  static const int per_sm = [] {
    int blocks = 0;
    LS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, flash_decoding_kernel<__nv_bfloat16, D>,
                                                                kThreads, 0));
    return blocks;
  }();
  return static_cast<std::int64_t>(per_sm) * ctx.sm_count();
}

}  // namespace

int flash_decoding_splits(const GpuContext& ctx, std::int64_t tokens, std::int64_t heads, std::int64_t kv_heads,
                          std::int64_t head_dim, std::int64_t max_context, int splits_wanted) {
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return 0;
  if (tokens <= 0 || max_context <= 0 || kv_heads <= 0 || heads % kv_heads != 0) return 0;
  const std::int64_t capacity = split_capacity(static_cast<int>(head_dim));
  const std::int64_t splits = splits_wanted > 0 ? splits_wanted : (max_context + capacity - 1) / capacity;
  if (splits > kMaxSplits || (max_context + splits - 1) / splits > capacity) return 0;
  const std::int64_t group = heads / kv_heads, head_blocks = kv_heads * ((group + kGroup - 1) / kGroup);
  const std::int64_t resident =
      head_dim == 64 ? resident_blocks<64>(ctx) : head_dim == 128 ? resident_blocks<128>(ctx) : resident_blocks<256>(ctx);
  return tokens * head_blocks * splits <= resident ? static_cast<int>(splits) : 0;
}

template <KvCacheElement W>
void flash_decoding(GpuContext& ctx, const float* q, const W* k_cache, const W* v_cache, std::int64_t tokens,
                    std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                    const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks, float scale,
                    float* out, int splits) {
  LS_CHECK(head_dim == 64 || head_dim == 128 || head_dim == 256,
           "flash_decoding: head_dim " << head_dim << " is not 64, 128 or 256");
  LS_CHECK(splits >= 1 && splits <= kMaxSplits, "flash_decoding: " << splits << " splits");
  LS_CHECK(reinterpret_cast<std::uintptr_t>(k_cache) % 16 == 0 && reinterpret_cast<std::uintptr_t>(v_cache) % 16 == 0 &&
               reinterpret_cast<std::uintptr_t>(q) % 16 == 0,
           "flash_decoding: q and the caches must be 16-byte aligned");
  if (tokens == 0) return;
  const std::int64_t group = heads / kv_heads, head_blocks = kv_heads * ((group + kGroup - 1) / kGroup);
  const SplitScratch scratch = split_scratch(ctx, tokens, heads, head_blocks, head_dim, splits);
  const dim3 grid(static_cast<unsigned>(tokens), static_cast<unsigned>(head_blocks), static_cast<unsigned>(splits));
  using T = device_t<W>;
  auto attend = [&](auto kernel) {
    launch(ctx, kernel, grid, kThreads, q, on_device(k_cache), on_device(v_cache), static_cast<int>(heads),
           static_cast<int>(kv_heads), static_cast<int>(block_size), seq_of, pos, block_tables,
           static_cast<int>(max_blocks), scale, out, scratch.partial, scratch.counters);
  };
  if (head_dim == 64) attend(flash_decoding_kernel<T, 64>);
  else if (head_dim == 128) attend(flash_decoding_kernel<T, 128>);
  else attend(flash_decoding_kernel<T, 256>);
}

#define LOCKSTEP_FLASH_DECODING(C)                                                                               \
  template void flash_decoding<C>(GpuContext&, const float*, const C*, const C*, std::int64_t, std::int64_t,          \
                                  std::int64_t, std::int64_t, std::int64_t, const int*, const int*, const int*,       \
                                  std::int64_t, float, float*, int);
LOCKSTEP_FLASH_DECODING(bf16)
LOCKSTEP_FLASH_DECODING(fp16)
LOCKSTEP_FLASH_DECODING(fp8_e4m3)
LOCKSTEP_FLASH_DECODING(fp8_e5m2)
#undef LOCKSTEP_FLASH_DECODING

}  // namespace lockstep::cuda
