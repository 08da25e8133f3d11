// Causal GQA attention over the paged KV cache, bf16 or fp16 (cuda::paged_attention, see
// kernels/dense_ops.h): one kernel for decode and prefill chunks, split-KV with the merge in the
// last split's block; cpu::paged_attention is the reference it is tested against.
#include <cuda_pipeline.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/flash_decoding.h"
#include "kernels/cuda/split_kv_merge.cuh"
#include "kernels/cuda/tensor_core_attention.h"
#include "kernels/dense_ops.h"
#include "kernels/fatal.h"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {
namespace {

// Attention blocks: 8 warps, tiles of 256 positions, up to 8 query heads (one KV head's) each.
constexpr int kAttnThreads = 256, kAttnWarps = kAttnThreads / kWarp, kAttnTile = 256, kAttnGroup = 8;

static_assert(kAttnTile >= kMaxSplits, "the merge keeps its weights in the scores' shared memory");

// How the values phase spreads a K/V row of kMaxD bf16 or fp16 (kMaxD / 4 chunks of 8 bytes)
// over a warp: kVLanes lanes per position, kVPos positions side by side, kVChunks chunks per lane,
// and kVRounds positions per lane read together (from the V rows staged in shared memory).
template <int kMaxD>
struct ValuesLayout {
  static constexpr int kChunks = kMaxD / 4;
  static constexpr int kVLanes = kChunks < kWarp ? kChunks : kWarp;
  static constexpr int kVPos = kWarp / kVLanes;
  static constexpr int kVChunks = kChunks / kVLanes;
  static constexpr int kVRounds = 4 / kVChunks;
  static constexpr int kWarpSpan = kVPos * kVRounds;  // positions a warp takes per iteration
  // Scores: positions per 4-lane group issued together (8 loads of 8 bytes each at kMaxD 128).
  // One: two unrolled rounds (and 8 V rounds) made the kernel 98 KB of code where it is 52 now.
  // A decode launch runs most of its code once, cold; halving it took batch-1 attention from
  // 18.8 to 15.2 us a layer on an H200 (benchmarks/RESULTS.md), where a split count changes little.
  static constexpr int kKRounds = 1;
};

// Copies rows[slots[r]] (each `len` T of a cache row `row_stride` elements apart, starting
// at `src`) to dst[r * dst_stride] for r < count, asynchronously (cp.async: the copies stay in
// flight without registers while the block computes; wait with __pipeline_wait_prior(0) and a
// barrier). 16-byte pieces where the rows allow, else 8-byte ones (len is a multiple of 4).
template <typename T>
__device__ void stage_rows_async(T* dst, int dst_stride, const T* src, std::int64_t row_stride,
                                 const std::int64_t* slots, int count, int len) {
  const bool wide = len % 8 == 0 && row_stride % 8 == 0 && reinterpret_cast<std::uintptr_t>(src) % 16 == 0;
  const int piece = wide ? 8 : 4, pieces = len / piece;  // elements per copy, copies per row
  // A thread keeps its piece of a row and steps over rows (one division, not one a copy).
  const int rows_per_pass = blockDim.x / pieces;  // pieces <= 64 (len <= 256)
  if (static_cast<int>(threadIdx.x) < rows_per_pass * pieces) {
    const int c = threadIdx.x % pieces * piece;
    for (int r = threadIdx.x / pieces; r < count; r += rows_per_pass) {
      const T* from = src + slots[r] * row_stride + c;
      if (wide) __pipeline_memcpy_async(dst + r * dst_stride + c, from, 16);
      else __pipeline_memcpy_async(dst + r * dst_stride + c, from, 8);
    }
  }
  __pipeline_commit();
}

// One block per (token, KV head, split, chunk of up to 8 of that KV head's query heads): the
// token's context is cut in gridDim.z equal splits (the last may be shorter or empty); the block
// walks its split in tiles of kAttnTile positions, reading each K and V row once for all its
// query heads (GQA: Qwen2-7B's 7 heads per KV head share one read). Per tile, with the block in
// step:
//   slots: the tile's KV-cache slots from the block table, once, into shared memory;
//   scores: 4 lanes per position (lane r of the 4 takes dims 16 j + 4 r .. + 3, 8-byte loads),
//           kKRounds positions per group loaded before any is summed, s[head][position] =
//           q . k * scale into shared memory;
//   softmax: a warp per head takes the tile's max, rescales its running max m and sum l, and
//           turns the scores into e^(s - m) in place;
//   values: the tile's V rows were copied to shared memory (cp.async, issued right after the
//           slots, so they arrive while the scores and softmax run); ValuesLayout (lane l of a
//           position takes the 4 dims of chunks l, l + 32) reads them for acc[head] += p * v,
//           after scaling acc by e^(m_old - m_new).
// The lanes' and warps' acc are then summed in a fixed order (deterministic). One split writes
// the output; several write their unnormalised partial (m, l, acc) and the last of them merges
// (flash-decoding: batch 1 still fills the GPU). head_dim is a multiple of 4, at most kMaxD (64,
// 128 or 256). T: the cache's device type, __nv_bfloat16 or __half.
template <typename T, int kMaxD>
__global__ void __launch_bounds__(kAttnThreads, kMaxD <= 128 ? 2 : 1)  // 256: acc alone takes 64 registers
    paged_attention_kernel(const float* q, const T* k_cache, const T* v_cache, int D, std::int64_t heads,
                           std::int64_t kv_heads, std::int64_t block_size, const int* seq_of, const int* pos,
                           const int* block_tables, std::int64_t max_blocks, float scale, float* out, float* partial,
                           int* counters, int decode) {
  dependent_launch_trigger();
  using VL = ValuesLayout<kMaxD>;
  static_assert(VL::kKRounds == 1, "the K rows read before the wait are one pass's");
  constexpr int kQkSteps = kMaxD / 16;
  __shared__ __align__(16) float q_s[kAttnGroup][kMaxD];  // after the tiles: the summed acc
  __shared__ float s_s[kAttnGroup][kAttnTile];
  __shared__ std::int64_t slot_s[kAttnTile];
  __shared__ float m_s[kAttnGroup], l_s[kAttnGroup], c_s[kAttnGroup];
  extern __shared__ __align__(16) unsigned char attn_dynamic_smem[];
  T* v_s = reinterpret_cast<T*>(attn_dynamic_smem);  // [kAttnTile][kMaxD]: the tile's V rows
  // Head counts, positions and block sizes fit int: 32-bit index math (a 64-bit division is a
  // long instruction sequence, and a batch-1 launch runs most of its code only once).
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp, bs = static_cast<int>(block_size);
  const int group = static_cast<int>(heads / kv_heads), chunks = (group + kAttnGroup - 1) / kAttnGroup;
  const std::int64_t t = blockIdx.x;
  const int kvh = static_cast<int>(blockIdx.y) / chunks;
  const int h0 = kvh * group + static_cast<int>(blockIdx.y) % chunks * kAttnGroup;  // this block's first query head
  const int n = min(kAttnGroup, kvh * group + group - h0);
  const std::int64_t row = kv_heads * D;
  const int* table = block_tables + static_cast<std::int64_t>(seq_of[t]) * max_blocks;
  const int context = pos[t] + 1;
  const int split_len = (context + static_cast<int>(gridDim.z) - 1) / static_cast<int>(gridDim.z);
  const int begin = static_cast<int>(blockIdx.z) * split_len;
  const int len = min(context, begin + split_len);

  // Before the wait (dependent launch: the previous kernels may still run), the work that needs
  // nothing they write: the first tile's slots from the block table (a step input), its V rows
  // copied in and this thread's K row of the first pass read, for the positions no kernel of this
  // step writes. At decode (one token a sequence) that is all but the newest; otherwise none. The
  // chain of dependent reads (sequence, table, K) then overlaps the kernels before, not this one.
  const int stable = decode ? context - 1 : 0;  // positions before it are read early
  const int first_tile = min(kAttnTile, len - begin);
  if (tid < first_tile) {
    const int p = begin + tid;
    slot_s[tid] = static_cast<std::int64_t>(table[p / bs]) * bs + p % bs;
  }
  __syncthreads();
  const int early_rows = max(0, min(first_tile, stable - begin));
  if (early_rows > 0) stage_rows_async(v_s, kMaxD, v_cache + kvh * D, row, slot_s, early_rows, D);
  const int quad = lane % 4;  // scores: this lane's quarter of a position's dims
  uint2 k_early[kQkSteps];
  {
    const int pp = tid / 4;
    const T* kp = k_cache + (pp < early_rows ? slot_s[pp] : 0) * row + kvh * D;
#pragma unroll
    for (int j = 0; j < kQkSteps; ++j) {
      const int d = 16 * j + 4 * quad;
      k_early[j] = pp < early_rows && d < D ? *reinterpret_cast<const uint2*>(kp + d) : make_uint2(0u, 0u);
    }
  }
  dependent_launch_wait();

  for (int e = tid; e < kAttnGroup * kMaxD; e += kAttnThreads) {
    const int i = e / kMaxD, d = e % kMaxD;
    q_s[i][d] = i < n && d < D ? q[(t * heads + h0 + i) * D + d] : 0.0f;
  }
  if (tid < kAttnGroup) m_s[tid] = -INFINITY, l_s[tid] = 0.0f;
  float acc[kAttnGroup][VL::kVChunks][4];
#pragma unroll
  for (int i = 0; i < kAttnGroup; ++i)
#pragma unroll
    for (int c = 0; c < VL::kVChunks; ++c)
#pragma unroll
      for (int k = 0; k < 4; ++k) acc[i][c][k] = 0.0f;
  const int vlane = lane % VL::kVLanes, vsub = lane / VL::kVLanes;  // values: chunk, and which position
  __syncthreads();

  static_assert(kAttnTile <= kAttnThreads, "a thread a slot");
  for (int p0 = begin; p0 < len; p0 += kAttnTile) {
    const int tile = min(kAttnTile, len - p0);
    const bool first = p0 == begin;  // its slots are in place, and its first early_rows V rows on their way
    if (!first) {
      if (tid < tile) {
        const int p = p0 + tid;
        slot_s[tid] = static_cast<std::int64_t>(table[p / bs]) * bs + p % bs;
      }
      __syncthreads();
    }
    const int staged = first ? early_rows : 0;
    if (staged < tile)
      stage_rows_async(v_s + staged * kMaxD, kMaxD, v_cache + kvh * D, row, slot_s + staged, tile - staged, D);
    // Scores. Every lane of a warp runs its passes (the shuffles need the whole warp); a warp
    // stops when its first position (pp0 rounded down to the warp's 8) is past the tile.
    for (int pp0 = tid / 4; (pp0 & ~7) < tile; pp0 += VL::kKRounds * kAttnThreads / 4) {
      uint2 raw[VL::kKRounds][kQkSteps];
#pragma unroll
      for (int u = 0; u < VL::kKRounds; ++u) {
        const int pp = pp0 + u * kAttnThreads / 4;
        if (first && pp0 == tid / 4 && pp < early_rows) {  // this thread's first pass: read before the wait
#pragma unroll
          for (int j = 0; j < kQkSteps; ++j) raw[u][j] = k_early[j];
          continue;
        }
        const T* kp = k_cache + (pp < tile ? slot_s[pp] : 0) * row + kvh * D;
#pragma unroll
        for (int j = 0; j < kQkSteps; ++j) {
          const int d = 16 * j + 4 * quad;  // D % 4 == 0: a lane's 4 dims are all in or all out
          raw[u][j] = pp < tile && d < D ? *reinterpret_cast<const uint2*>(kp + d) : make_uint2(0u, 0u);
        }
      }
#pragma unroll
      for (int u = 0; u < VL::kKRounds; ++u) {
        const int pp = pp0 + u * kAttnThreads / 4;
        float dot[kAttnGroup];
#pragma unroll
        for (int i = 0; i < kAttnGroup; ++i) dot[i] = 0.0f;
#pragma unroll
        for (int j = 0; j < kQkSteps; ++j) {
          const int d = 16 * j + 4 * quad;
          if (d >= D) continue;
          float k4[4];
          unpack_x4<T>(raw[u][j], k4);
#pragma unroll
          for (int i = 0; i < kAttnGroup; ++i) {
            if (i >= n) break;
            const float4 qq = *reinterpret_cast<const float4*>(&q_s[i][d]);
            dot[i] += qq.x * k4[0] + qq.y * k4[1] + qq.z * k4[2] + qq.w * k4[3];
          }
        }
#pragma unroll
        for (int i = 0; i < kAttnGroup; ++i) {
          if (i >= n) break;
          dot[i] += __shfl_xor_sync(0xffffffffu, dot[i], 1);
          dot[i] += __shfl_xor_sync(0xffffffffu, dot[i], 2);
        }
        if (quad == 0 && pp < tile) {
#pragma unroll
          for (int i = 0; i < kAttnGroup; ++i)
            if (i < n) s_s[i][pp] = dot[i] * scale;
        }
      }
    }
    __syncthreads();
    // Softmax: warp i takes head i.
    if (warp < n) {
      float* s = s_s[warp];
      float tile_max = -INFINITY;
      for (int j = lane; j < tile; j += kWarp) tile_max = fmaxf(tile_max, s[j]);
      tile_max = warp_max(tile_max);
      const float m_old = m_s[warp], m_new = fmaxf(m_old, tile_max);
      float sum = 0.0f;
      for (int j = lane; j < tile; j += kWarp) {
        const float e = expf(s[j] - m_new);
        s[j] = e;
        sum += e;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float c = expf(m_old - m_new);  // 0 on the first tile (m_old = -inf)
        c_s[warp] = c;
        l_s[warp] = l_s[warp] * c + sum;
        m_s[warp] = m_new;
      }
    }
    __pipeline_wait_prior(0);  // this thread's V copies; the barrier makes everyone's visible
    __syncthreads();
    // Values: warp w takes positions [w * span, + span), then [(w + 8) * span, ...).
#pragma unroll
    for (int i = 0; i < kAttnGroup; ++i) {
      if (i >= n) break;
      const float c = c_s[i];
#pragma unroll
      for (int ch = 0; ch < VL::kVChunks; ++ch)
#pragma unroll
        for (int k = 0; k < 4; ++k) acc[i][ch][k] *= c;
    }
    for (int base = warp * VL::kWarpSpan; base < tile; base += kAttnWarps * VL::kWarpSpan) {
      uint2 raw[VL::kVRounds][VL::kVChunks];
#pragma unroll
      for (int u = 0; u < VL::kVRounds; ++u) {
        const int pp = base + u * VL::kVPos + vsub;
        const T* vp = v_s + (pp < tile ? pp : 0) * kMaxD;
#pragma unroll
        for (int ch = 0; ch < VL::kVChunks; ++ch) {
          const int d = 4 * (vlane + ch * VL::kVLanes);
          raw[u][ch] = pp < tile && d < D ? *reinterpret_cast<const uint2*>(vp + d) : make_uint2(0u, 0u);
        }
      }
#pragma unroll
      for (int u = 0; u < VL::kVRounds; ++u) {
        const int pp = base + u * VL::kVPos + vsub;
        if (pp >= tile) continue;  // no shuffles below: lanes may leave
        float v[VL::kVChunks][4];
#pragma unroll
        for (int ch = 0; ch < VL::kVChunks; ++ch) unpack_x4<T>(raw[u][ch], v[ch]);
#pragma unroll
        for (int i = 0; i < kAttnGroup; ++i) {
          if (i >= n) break;
          const float p = s_s[i][pp];
#pragma unroll
          for (int ch = 0; ch < VL::kVChunks; ++ch)
#pragma unroll
            for (int k = 0; k < 4; ++k) acc[i][ch][k] += p * v[ch][k];
        }
      }
    }
    __syncthreads();  // the next tile overwrites s_s, slot_s and v_s
  }

  // The positions side by side in a warp hold the same dims: sum them (kVPos is 1 or a power of 2).
#pragma unroll
  for (int o = VL::kVLanes; o < kWarp; o *= 2)
#pragma unroll
    for (int i = 0; i < kAttnGroup; ++i)
#pragma unroll
      for (int ch = 0; ch < VL::kVChunks; ++ch)
#pragma unroll
        for (int k = 0; k < 4; ++k) acc[i][ch][k] += __shfl_xor_sync(0xffffffffu, acc[i][ch][k], o);
  // Sum the warps' acc into q_s (no longer needed), warp by warp: the same order every run.
  float* sum_s = &q_s[0][0];
  for (int w = 0; w < kAttnWarps; ++w) {
    if (warp == w && vsub == 0) {
#pragma unroll
      for (int i = 0; i < kAttnGroup; ++i) {
        if (i >= n) break;
#pragma unroll
        for (int ch = 0; ch < VL::kVChunks; ++ch) {
          const int d = 4 * (vlane + ch * VL::kVLanes);
          if (d >= D) continue;
          float* dst = sum_s + i * kMaxD + d;
#pragma unroll
          for (int k = 0; k < 4; ++k) dst[k] = w == 0 ? acc[i][ch][k] : dst[k] + acc[i][ch][k];
        }
      }
    }
    __syncthreads();
  }
#pragma unroll 1
  for (int e = tid; e < n * D; e += kAttnThreads) {
    const int i = e / D, d = e % D;
    const float o = sum_s[i * kMaxD + d];
    const std::int64_t th = t * heads + h0 + i;
    if (gridDim.z == 1) {
      out[th * D + d] = o / l_s[i];
    } else {  // partial[(t, h, split)] = {max, sum, acc[D]}; an empty split has sum 0
      float* ph = partial + (th * gridDim.z + blockIdx.z) * partial_stride(D);
      if (d == 0) ph[D] = m_s[i], ph[D + 1] = l_s[i];
      ph[d] = o;
    }
  }
  if (gridDim.z > 1)
    merge_splits_if_last(partial, counters + t * gridDim.y + blockIdx.y, t * heads + h0, n, D, &s_s[0][0], out);
}

}  // namespace

namespace {

// The attention kernel keeps a tile's V rows in dynamic shared memory: up to 128 KB, past the
// 48 KB a launch gets unasked. Allowed once per instantiation; the carveout favours shared
// memory over L1, which the streamed K rows gain little from.
template <typename T>
std::size_t v_tile_bytes(int max_d) { return static_cast<std::size_t>(kAttnTile) * max_d * sizeof(T); }

template <typename T, int kMaxD>
auto allow_v_tile() {
  static const bool allowed = [] {
    LS_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_kernel<T, kMaxD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(v_tile_bytes<T>(kMaxD))));
    LS_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_kernel<T, kMaxD>,
                                       cudaFuncAttributePreferredSharedMemoryCarveout,
                                       static_cast<int>(cudaSharedmemCarveoutMaxShared)));
    return true;
  }();
  (void)allowed;
  return paged_attention_kernel<T, kMaxD>;
}

// The bf16 / fp16 cache's kernels past flash-decoding: CUDA cores or tensor cores (dense_ops.h).
template <HalfFloat W>
void paged_attention_16bit(GpuContext& ctx, const float* q, const W* k_cache, const W* v_cache, std::int64_t tokens,
                           std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                           const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks,
                           float scale, float* out, std::int64_t max_context, std::int64_t query_run,
                           AttentionKernel kernel, int splits_wanted) {
  const std::int64_t context = max_context > 0 ? max_context : max_blocks * block_size;
  if (kernel == AttentionKernel::FlashDecoding) kernel = AttentionKernel::CudaCores;
  // Tensor cores for prefill: the tokens of a run share each K/V tile (8 prompts of 1024 tokens:
  // 1.9 ms, 7.4 on CUDA cores, on an H200), and for decode steps of 32k positions or more
  // (tokens x longest context), where they were faster at every size measured (kernel_bench,
  // benchmarks/RESULTS.md 2026-12-02: 378 vs 613 us at 256 x 1536 positions, 53 vs 73 us at
  // 32 x 1024 and 8 x 4096); below, CUDA cores (30 vs 32 us at 8 x 1024, 19 vs 27 at 1 x 256).
  constexpr std::int64_t kTensorCoreDecodePositions = 32768;
  if (kernel == AttentionKernel::Auto)
    kernel = query_run > 1 || tokens * context >= kTensorCoreDecodePositions ? AttentionKernel::TensorCores
                                                                             : AttentionKernel::CudaCores;
  if (kernel == AttentionKernel::TensorCores && tensor_core_attention_supports(ctx, head_dim)) {
    tensor_core_attention(ctx, q, k_cache, v_cache, tokens, heads, kv_heads, head_dim, block_size, seq_of, pos,
                          block_tables, max_blocks, scale, out, max_context, query_run, splits_wanted);
    return;
  }
  const std::int64_t group = heads / kv_heads;
  const std::int64_t head_blocks = kv_heads * ((group + kAttnGroup - 1) / kAttnGroup);
  // Cut each token's context in equal splits while the grid still fits the GPU in one wave (2
  // blocks per SM at head_dim <= 128, 1 above: the kernels' launch bounds), so that batch 1 still
  // spreads over the GPU and big batches need no split: at most one split per 64 positions of
  // the longest context, at most kMaxSplits. A split is a block's whole latency chain (q, slots,
  // K, softmax, V, partial, merge), so a second wave of blocks costs as much as the first: batch
  // 32 at 256 positions cut in 3 (384 blocks on 264 slots) took 51 us where 2 would fill one wave.
  constexpr int kMinSplitLen = 64;  // a split shorter than the tile's first pass saves no time
  const std::int64_t resident = static_cast<std::int64_t>(ctx.sm_count()) * (head_dim <= 128 ? 2 : 1);
  const std::int64_t wanted = resident / (tokens * head_blocks);
  const int splits =
      splits_wanted > 0
          ? std::min(splits_wanted, kMaxSplits)
          : static_cast<int>(std::clamp<std::int64_t>(std::min(wanted, (context + kMinSplitLen - 1) / kMinSplitLen),
                                                      1, kMaxSplits));
  const SplitScratch scratch = split_scratch(ctx, tokens, heads, head_blocks, head_dim, splits);
  const dim3 grid(static_cast<unsigned>(tokens), static_cast<unsigned>(head_blocks), static_cast<unsigned>(splits));
  using T = device_t<W>;
  auto attend = [&](auto kernel, int max_d) {
    launch_with_smem(ctx, kernel, grid, kAttnThreads, v_tile_bytes<T>(max_d), q, on_device(k_cache),
                     on_device(v_cache), static_cast<int>(head_dim), heads, kv_heads, block_size, seq_of, pos,
                     block_tables, max_blocks, scale, out, scratch.partial, scratch.counters, query_run == 1 ? 1 : 0);
  };
  if (head_dim <= 64) attend(allow_v_tile<T, 64>(), 64);
  else if (head_dim <= 128) attend(allow_v_tile<T, 128>(), 128);
  else attend(allow_v_tile<T, 256>(), 256);
}

}  // namespace

bool fp8_kv_cache_supported(const GpuContext& ctx, std::int64_t head_dim) {
  return tensor_core_attention_supports(ctx, head_dim, true);
}

template <KvCacheElement W>
void paged_attention(GpuContext& ctx, const float* q, const W* k_cache, const W* v_cache, std::int64_t tokens,
                     std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                     const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks, float scale,
                     float* out, std::int64_t max_context, std::int64_t query_run, AttentionKernel kernel,
                     int splits_wanted) {
  LS_CHECK(head_dim > 0 && head_dim <= 256 && head_dim % 4 == 0,
           "paged_attention: head_dim " << head_dim << " is not a multiple of 4 up to 256");
  LS_CHECK(kv_heads > 0 && heads % kv_heads == 0, "paged_attention: heads " << heads << " not a multiple of kv_heads "
                                                                            << kv_heads);
  if constexpr (Fp8<W>)
    LS_CHECK(fp8_kv_cache_supported(ctx, head_dim),
             "paged_attention: an fp8 KV cache needs head_dim a multiple of 16 up to 128 (not "
                 << head_dim << ") and a GPU of compute capability 8.0 or newer (this one: "
                 << ctx.compute_capability() / 10 << "." << ctx.compute_capability() % 10 << ")");
  if (tokens == 0) return;
  const std::int64_t context = max_context > 0 ? max_context : max_blocks * block_size;
  auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  if ((kernel == AttentionKernel::Auto || kernel == AttentionKernel::FlashDecoding) && query_run == 1 && aligned(q) &&
      aligned(k_cache) && aligned(v_cache)) {
    const int splits = flash_decoding_splits(ctx, tokens, heads, kv_heads, head_dim, context, splits_wanted);
    if (splits > 0) {
      flash_decoding(ctx, q, k_cache, v_cache, tokens, heads, kv_heads, head_dim, block_size, seq_of, pos,
                     block_tables, max_blocks, scale, out, splits);
      return;
    }
  }
  if constexpr (Fp8<W>)  // no CUDA-core kernel for an fp8 cache: tensor cores, whichever was asked for
    tensor_core_attention(ctx, q, k_cache, v_cache, tokens, heads, kv_heads, head_dim, block_size, seq_of, pos,
                          block_tables, max_blocks, scale, out, max_context, query_run, splits_wanted);
  else
    paged_attention_16bit(ctx, q, k_cache, v_cache, tokens, heads, kv_heads, head_dim, block_size, seq_of, pos,
                          block_tables, max_blocks, scale, out, max_context, query_run, kernel, splits_wanted);
}

#define LOCKSTEP_PAGED_ATTENTION(C)                                                                              \
  template void paged_attention<C>(GpuContext&, const float*, const C*, const C*, std::int64_t, std::int64_t,         \
                                   std::int64_t, std::int64_t, std::int64_t, const int*, const int*, const int*,       \
                                   std::int64_t, float, float*, std::int64_t, std::int64_t, AttentionKernel, int);
LOCKSTEP_PAGED_ATTENTION(bf16)
LOCKSTEP_PAGED_ATTENTION(fp16)
LOCKSTEP_PAGED_ATTENTION(fp8_e4m3)
LOCKSTEP_PAGED_ATTENTION(fp8_e5m2)
#undef LOCKSTEP_PAGED_ATTENTION

}  // namespace lockstep::cuda
