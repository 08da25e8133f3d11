// CUDA kernels of the dense-transformer ops (see kernels/dense_ops.h); cpu/dense_ops.cc is the
// reference they are tested against. Every launch goes on the context's stream through launch()
// (dependent_launch.cuh) and is checked.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_pipeline.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/gemv.h"
#include "kernels/dense_ops.h"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {
namespace {

constexpr int kWarp = 32;

const __nv_bfloat16* as_bf16(const bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }
__nv_bfloat16* as_bf16(bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }

// An activation written as fp32, or rounded to bf16 for a linear that reads it.
__device__ void store(float* p, float v) { *p = v; }
__device__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

unsigned blocks_for(std::int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

__device__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
__device__ float block_sum(float v) {
  __shared__ float partial[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / kWarp;
  v = lane < warps ? partial[lane] : 0.0f;
  return warp_sum(v);
}

__global__ void to_bf16_kernel(const float* x, std::int64_t n, __nv_bfloat16* y) {
  dependent_launch_enter();
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) y[i] = __float2bfloat16_rn(x[i]);
}

__global__ void add_bias_kernel(float* y, std::int64_t rows, std::int64_t out, const __nv_bfloat16* bias) {
  dependent_launch_enter();
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < rows * out) y[i] += __bfloat162float(bias[i % out]);
}

// One block per row. With `delta`, residual += delta first (and is written back). A row of
// float4s that fits kNormVec per thread is read once into registers, with all its loads in
// flight together (decode's rows are a single block each: latency is all there is); other
// rows take the plain loop.
constexpr int kNormVec = 8;
template <typename Out>
__global__ void __launch_bounds__(1024)
    rms_norm_kernel(float* x, const float* delta, std::int64_t dim, const __nv_bfloat16* weight, float eps, Out* y) {
  dependent_launch_enter();
  float* xr = x + blockIdx.x * dim;
  const float* dr = delta ? delta + blockIdx.x * dim : nullptr;
  Out* yr = y + blockIdx.x * dim;
  const int threads = blockDim.x, tid = threadIdx.x;
  const bool aligned = (reinterpret_cast<std::uintptr_t>(xr) | reinterpret_cast<std::uintptr_t>(dr)) % 16 == 0;
  if (aligned && dim % 4 == 0 && dim / 4 <= static_cast<std::int64_t>(kNormVec) * threads) {
    const int n4 = static_cast<int>(dim / 4);
    float4* x4 = reinterpret_cast<float4*>(xr);
    float4 v[kNormVec];
#pragma unroll
    for (int k = 0; k < kNormVec; ++k) {
      const int j = tid + k * threads;
      v[k] = j < n4 ? x4[j] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    if (dr) {
      const float4* d4 = reinterpret_cast<const float4*>(dr);
#pragma unroll
      for (int k = 0; k < kNormVec; ++k) {
        const int j = tid + k * threads;
        if (j >= n4) break;
        const float4 d = d4[j];
        v[k].x += d.x, v[k].y += d.y, v[k].z += d.z, v[k].w += d.w;
        x4[j] = v[k];
      }
    }
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < kNormVec; ++k) ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    const float inv = rsqrtf(block_sum(ss) / static_cast<float>(dim) + eps);
#pragma unroll
    for (int k = 0; k < kNormVec; ++k) {
      const int j = tid + k * threads;
      if (j >= n4) break;
      const __nv_bfloat16* w = weight + 4 * j;  // 2-byte aligned only: element loads
      Out* o = yr + 4 * j;
      store(o, v[k].x * inv * __bfloat162float(w[0]));
      store(o + 1, v[k].y * inv * __bfloat162float(w[1]));
      store(o + 2, v[k].z * inv * __bfloat162float(w[2]));
      store(o + 3, v[k].w * inv * __bfloat162float(w[3]));
    }
    return;
  }
  float ss = 0.0f;
  for (std::int64_t i = tid; i < dim; i += threads) {
    float v = xr[i];
    if (dr) xr[i] = v = v + dr[i];
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(dim) + eps);
  for (std::int64_t i = tid; i < dim; i += threads) store(yr + i, xr[i] * inv * __bfloat162float(weight[i]));
}

__global__ void embedding_kernel(const int* ids, const __nv_bfloat16* table, std::int64_t vocab_begin,
                                 std::int64_t vocab_rows, std::int64_t hidden, float* out) {
  dependent_launch_enter();
  const std::int64_t local = ids[blockIdx.x] - vocab_begin;
  float* o = out + blockIdx.x * hidden;
  const bool mine = local >= 0 && local < vocab_rows;
  for (std::int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    o[i] = mine ? __bfloat162float(table[local * hidden + i]) : 0.0f;
}

// One block per row: the largest value, the lowest index among equals. Each thread issues
// kArgmaxLoads loads before comparing (one at a time kept a 152k row at 65 us, latency-bound).
constexpr int kArgmaxLoads = 8;
__global__ void argmax_kernel(const float* logits, std::int64_t vocab, std::int64_t stride, int* ids, float* values) {
  dependent_launch_enter();
  const float* row = logits + blockIdx.x * stride;
  float best = -INFINITY;
  int best_i = 0x7fffffff;
  const std::int64_t step = blockDim.x;
  for (std::int64_t base = threadIdx.x; base < vocab; base += kArgmaxLoads * step) {
    float v[kArgmaxLoads];
#pragma unroll
    for (int k = 0; k < kArgmaxLoads; ++k) v[k] = base + k * step < vocab ? row[base + k * step] : -INFINITY;
#pragma unroll
    for (int k = 0; k < kArgmaxLoads; ++k)  // ascending index: the first max is kept
      if (v[k] > best) best = v[k], best_i = static_cast<int>(base + k * step);
  }
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float v = __shfl_xor_sync(0xffffffffu, best, o);
    const int j = __shfl_xor_sync(0xffffffffu, best_i, o);
    if (v > best || (v == best && j < best_i)) best = v, best_i = j;
  }
  __shared__ float vals[kWarp];
  __shared__ int idxs[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) vals[warp] = best, idxs[warp] = best_i;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x / kWarp); ++w)
      if (vals[w] > best || (vals[w] == best && idxs[w] < best_i)) best = vals[w], best_i = idxs[w];
    ids[blockIdx.x] = best_i == 0x7fffffff ? 0 : best_i;  // an all -inf/NaN row: index 0
    if (values) values[blockIdx.x] = best;
  }
}

// Token t is blockIdx.x; its fused q|k|v row plus bias is cut into items, one per thread over
// gridDim.y blocks (a single block per token left decode latency-bound): first the (head,
// i < head_dim / 2) pairs of the q and k heads (rotated, to q or the K cache), then the V elements.
__global__ void split_qkv_rope_cache_kernel(const float* qkv, int q_heads, int kv_heads, int head_dim,
                                            const __nv_bfloat16* bias, const int* positions, const float* inv_freq,
                                            const std::int64_t* slots, float* q, __nv_bfloat16* k_cache,
                                            __nv_bfloat16* v_cache) {
  dependent_launch_enter();
  const std::int64_t t = blockIdx.x;
  const int half = head_dim / 2, rotated = q_heads + kv_heads, pairs = rotated * half, kv_row = kv_heads * head_dim;
  const int g = blockIdx.y * blockDim.x + threadIdx.x;
  const float* x = qkv + t * (rotated + kv_heads) * head_dim;
  if (g < pairs) {
    const int h = g / half, i = g - h * half, e = h * head_dim + i;
    float a = x[e], b = x[e + half];
    if (bias) a += __bfloat162float(bias[e]), b += __bfloat162float(bias[e + half]);
    float s, c;
    sincosf(static_cast<float>(positions[t]) * inv_freq[i], &s, &c);
    const float lo = a * c - b * s, hi = b * c + a * s;
    if (h < q_heads) {
      float* qt = q + t * q_heads * head_dim;
      qt[e] = lo, qt[e + half] = hi;
    } else {
      __nv_bfloat16* k_out = k_cache + slots[t] * kv_row + (e - q_heads * head_dim);
      store(k_out, lo), store(k_out + half, hi);
    }
  } else if (g < pairs + kv_row) {
    const int e = g - pairs, src = rotated * head_dim + e;
    store(v_cache + slots[t] * kv_row + e, x[src] + (bias ? __bfloat162float(bias[src]) : 0.0f));
  }
}

template <typename Out>
__global__ void silu_mul_kernel(const float* gate_up, std::int64_t rows, std::int64_t ffn, Out* out) {
  dependent_launch_enter();
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * ffn) return;
  const std::int64_t r = i / ffn, j = i % ffn;
  const float gate = gate_up[r * 2 * ffn + j], up = gate_up[r * 2 * ffn + ffn + j];
  store(out + i, gate / (1.0f + expf(-gate)) * up);
}

// Attention blocks: 8 warps, tiles of 256 positions, up to 8 query heads (one KV head's) each.
constexpr int kAttnThreads = 256, kAttnWarps = kAttnThreads / kWarp, kAttnTile = 256, kAttnGroup = 8;

__device__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Two bf16 packed in 32 bits (the lower address in the low half) as floats.
__device__ void unpack_bf16x2(unsigned u, float& lo, float& hi) {
  lo = __uint_as_float(u << 16);
  hi = __uint_as_float(u & 0xffff0000u);
}

// Two bf16 pairs loaded as one 8-byte word, as 4 floats.
__device__ void unpack_bf16x4(uint2 u, float* f) {
  unpack_bf16x2(u.x, f[0], f[1]);
  unpack_bf16x2(u.y, f[2], f[3]);
}

// How the values phase spreads a K/V row of kMaxD bf16 (kMaxD / 4 chunks of 8 bytes) over a
// warp: kVLanes lanes per position, kVPos positions side by side, kVChunks chunks per lane, and
// kVRounds positions per lane read together (from the V rows staged in shared memory).
template <int kMaxD>
struct ValuesLayout {
  static constexpr int kChunks = kMaxD / 4;
  static constexpr int kVLanes = kChunks < kWarp ? kChunks : kWarp;
  static constexpr int kVPos = kWarp / kVLanes;
  static constexpr int kVChunks = kChunks / kVLanes;
  static constexpr int kVRounds = 8 / kVChunks;
  static constexpr int kWarpSpan = kVPos * kVRounds;  // positions a warp takes per iteration
  // Scores: positions per 4-lane group issued together (8 loads of 8 bytes each at kMaxD 128).
  static constexpr int kKRounds = kMaxD <= 128 ? 2 : 1;
};

// Copies rows[slots[r]] (each `len` bf16 of a cache row `row_stride` elements apart, starting
// at `src`) to dst[r * dst_stride] for r < count, asynchronously (cp.async: the copies stay in
// flight without registers while the block computes; wait with __pipeline_wait_prior(0) and a
// barrier). 16-byte pieces where the rows allow, else 8-byte ones (len is a multiple of 4).
__device__ void stage_rows_async(__nv_bfloat16* dst, int dst_stride, const __nv_bfloat16* src, std::int64_t row_stride,
                                 const std::int64_t* slots, int count, int len) {
  const bool wide = len % 8 == 0 && row_stride % 8 == 0 && reinterpret_cast<std::uintptr_t>(src) % 16 == 0;
  const int piece = wide ? 8 : 4, pieces = len / piece;  // elements per copy, copies per row
  for (int e = threadIdx.x; e < count * pieces; e += blockDim.x) {
    const int r = e / pieces, c = (e - r * pieces) * piece;
    const __nv_bfloat16* from = src + slots[r] * row_stride + c;
    if (wide) __pipeline_memcpy_async(dst + r * dst_stride + c, from, 16);
    else __pipeline_memcpy_async(dst + r * dst_stride + c, from, 8);
  }
  __pipeline_commit();
}

// Split-KV partials: per (token, head, split) acc[D] (unnormalised), then m and l, padded to
// D + 4 floats so that every acc row is 16-byte aligned.
__host__ __device__ constexpr int partial_stride(int D) { return D + 4; }
constexpr int kMaxSplits = 64;
static_assert(kAttnTile >= kMaxSplits, "the merge keeps its weights in the scores' shared memory");

// Every split of a (token, head chunk) has written its partial per head; the last of them to
// finish (a counter per (token, head chunk), left at 0 for the next launch) merges them:
// out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M), the splits always summed in index order
// (deterministic). One kernel instead of attention + a combine kernel. The merge is a short
// tail, so it is spread wide: a warp per head for the weights e^(m_s - M) / L (into w_s, at least
// kAttnGroup x kMaxSplits floats of shared memory), then a thread per 4 dims of a head, its
// split loads unrolled so that they are in flight together.
__device__ void merge_splits_if_last(const float* partial, int* counter, std::int64_t th0, int n, int D, float* w_s,
                                     float* out) {
  __shared__ bool last;
  __threadfence();  // this block's partials are visible before its count is
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(counter, 1) == static_cast<int>(gridDim.z) - 1;
    if (last) *counter = 0;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  const int splits = gridDim.z, stride = partial_stride(D), lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  // The other blocks' partials through L2 (__ldcg): this SM's L1 never held them, but say so.
  if (warp < n) {
    const float* p = partial + (th0 + warp) * splits * stride + D;  // {m, l} of split 0
    float M = -INFINITY;
    for (int sp = lane; sp < splits; sp += kWarp)
      if (__ldcg(p + sp * stride + 1) > 0.0f) M = fmaxf(M, __ldcg(p + sp * stride));
    M = warp_max(M);
    float L = 0.0f;
    for (int sp = lane; sp < splits; sp += kWarp) {
      const float l = __ldcg(p + sp * stride + 1);
      const float e = l > 0.0f ? expf(__ldcg(p + sp * stride) - M) : 0.0f;  // an empty split has l = 0
      w_s[warp * kMaxSplits + sp] = e;
      L += l * e;
    }
    L = warp_sum(L);
    for (int sp = lane; sp < splits; sp += kWarp) w_s[warp * kMaxSplits + sp] /= L;
  }
  __syncthreads();
  const int quads = D / 4;
  for (int e = threadIdx.x; e < n * quads; e += blockDim.x) {
    const int i = e / quads, d = 4 * (e % quads);
    const float* p = partial + (th0 + i) * splits * stride + d;
    const float* w = w_s + i * kMaxSplits;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    constexpr int kUnroll = 8;
    for (int sp0 = 0; sp0 < splits; sp0 += kUnroll) {
      float4 a[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        a[u] = sp0 + u < splits ? __ldcg(reinterpret_cast<const float4*>(p + (sp0 + u) * stride))
                                : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (sp0 + u >= splits) break;
        const float wu = w[sp0 + u];
        o.x += wu * a[u].x, o.y += wu * a[u].y, o.z += wu * a[u].z, o.w += wu * a[u].w;
      }
    }
    float* dst = out + (th0 + i) * D + d;
    dst[0] = o.x, dst[1] = o.y, dst[2] = o.z, dst[3] = o.w;
  }
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
// 128 or 256).
template <int kMaxD>
__global__ void __launch_bounds__(kAttnThreads, kMaxD <= 128 ? 2 : 1)  // 256: acc alone takes 64 registers
    paged_attention_kernel(const float* q, const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache, int D,
                           std::int64_t heads, std::int64_t kv_heads, std::int64_t block_size, const int* seq_of,
                           const int* pos, const int* block_tables, std::int64_t max_blocks, float scale, float* out,
                           float* partial, int* counters) {
  dependent_launch_enter();
  using VL = ValuesLayout<kMaxD>;
  constexpr int kQkSteps = kMaxD / 16;
  __shared__ __align__(16) float q_s[kAttnGroup][kMaxD];  // after the tiles: the summed acc
  __shared__ float s_s[kAttnGroup][kAttnTile];
  __shared__ std::int64_t slot_s[kAttnTile];
  __shared__ float m_s[kAttnGroup], l_s[kAttnGroup], c_s[kAttnGroup];
  extern __shared__ __align__(16) unsigned char attn_dynamic_smem[];
  __nv_bfloat16* v_s = reinterpret_cast<__nv_bfloat16*>(attn_dynamic_smem);  // [kAttnTile][kMaxD]: the tile's V rows
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp;
  const std::int64_t group = heads / kv_heads, chunks = (group + kAttnGroup - 1) / kAttnGroup;
  const std::int64_t t = blockIdx.x, kvh = blockIdx.y / chunks;
  const std::int64_t h0 = kvh * group + (blockIdx.y % chunks) * kAttnGroup;  // this block's first query head
  const int n = static_cast<int>(min(static_cast<std::int64_t>(kAttnGroup), kvh * group + group - h0));
  const std::int64_t row = kv_heads * D;
  const int* table = block_tables + static_cast<std::int64_t>(seq_of[t]) * max_blocks;
  const std::int64_t context = static_cast<std::int64_t>(pos[t]) + 1;
  const std::int64_t split_len = (context + gridDim.z - 1) / gridDim.z;
  const std::int64_t begin = static_cast<std::int64_t>(blockIdx.z) * split_len;
  const std::int64_t len = min(context, begin + split_len);

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
  const int quad = lane % 4;                                        // scores: this lane's quarter of a position's dims
  const int vlane = lane % VL::kVLanes, vsub = lane / VL::kVLanes;  // values: chunk, and which position
  __syncthreads();

  for (std::int64_t p0 = begin; p0 < len; p0 += kAttnTile) {
    const int tile = static_cast<int>(min(static_cast<std::int64_t>(kAttnTile), len - p0));
    for (int pp = tid; pp < tile; pp += kAttnThreads) {
      const std::int64_t p = p0 + pp;
      slot_s[pp] = static_cast<std::int64_t>(table[p / block_size]) * block_size + p % block_size;
    }
    __syncthreads();
    stage_rows_async(v_s, kMaxD, v_cache + kvh * D, row, slot_s, tile, D);
    // Scores. Every lane of a warp runs its passes (the shuffles need the whole warp); a warp
    // stops when its first position (pp0 rounded down to the warp's 8) is past the tile.
    for (int pp0 = tid / 4; (pp0 & ~7) < tile; pp0 += VL::kKRounds * kAttnThreads / 4) {
      uint2 raw[VL::kKRounds][kQkSteps];
#pragma unroll
      for (int u = 0; u < VL::kKRounds; ++u) {
        const int pp = pp0 + u * kAttnThreads / 4;
        const __nv_bfloat16* kp = k_cache + (pp < tile ? slot_s[pp] : 0) * row + kvh * D;
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
          unpack_bf16x4(raw[u][j], k4);
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
        const __nv_bfloat16* vp = v_s + (pp < tile ? pp : 0) * kMaxD;
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
        for (int ch = 0; ch < VL::kVChunks; ++ch) unpack_bf16x4(raw[u][ch], v[ch]);
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

void linear(GpuContext& ctx, const bf16* x, std::int64_t rows, std::int64_t in, const bf16* w, std::int64_t out,
            const bf16* bias, float* y) {
  if (rows == 0 || out == 0) return;  // e.g. a step whose prefill chunks sample no row
  if (gemv(ctx, x, rows, in, w, out, bias, y)) return;  // decode-sized: bandwidth-bound
  // Row-major y[rows, out] is column-major [out, rows] = w[out, in] . x^T: A = w read as the
  // column-major [in, out] it is in memory, transposed.
  const float alpha = 1.0f, beta = 0.0f;
  LS_CUBLAS_CHECK(cublasGemmEx(ctx.blas(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(rows),
                               static_cast<int>(in), &alpha, w, CUDA_R_16BF, static_cast<int>(in), x, CUDA_R_16BF,
                               static_cast<int>(in), &beta, y, CUDA_R_32F, static_cast<int>(out), CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT));
  if (bias) {
    launch(ctx, add_bias_kernel, blocks_for(rows * out, 256), 256, y, rows, out, as_bf16(bias));
  }
}

void linear(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t in, const bf16* w, std::int64_t out,
            const bf16* bias, float* y) {
  if (rows == 0 || out == 0) return;
  if (gemv(ctx, x, rows, in, w, out, bias, y)) return;  // rounds x to bf16 as it reads it
  auto* xb = static_cast<bf16*>(ctx.scratch(static_cast<std::size_t>(rows * in) * sizeof(bf16)));
  launch(ctx, to_bf16_kernel, blocks_for(rows * in, 256), 256, x, rows * in, as_bf16(xb));
  linear(ctx, xb, rows, in, w, out, bias, y);
}

namespace {
int norm_threads(std::int64_t dim) { return dim >= 4096 ? 1024 : dim >= 1024 ? 512 : 128; }
}  // namespace

namespace {

template <typename Out>
void launch_rms_norm(GpuContext& ctx, float* x, const float* delta, std::int64_t rows, std::int64_t dim,
                     const bf16* weight, float eps, Out* y) {
  if (rows == 0) return;
  launch(ctx, rms_norm_kernel<Out>, static_cast<unsigned>(rows), norm_threads(dim), x, delta, dim, as_bf16(weight), eps,
         y);
}

template <typename Out>
void launch_silu_mul(GpuContext& ctx, const float* gate_up, std::int64_t rows, std::int64_t ffn, Out* out) {
  if (rows * ffn == 0) return;
  launch(ctx, silu_mul_kernel<Out>, blocks_for(rows * ffn, 256), 256, gate_up, rows, ffn, out);
}

}  // namespace

// x is only read when delta is null.
void rms_norm(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t dim, const bf16* weight, float eps,
              float* y) {
  launch_rms_norm(ctx, const_cast<float*>(x), nullptr, rows, dim, weight, eps, y);
}
void rms_norm(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t dim, const bf16* weight, float eps,
              bf16* y) {
  launch_rms_norm(ctx, const_cast<float*>(x), nullptr, rows, dim, weight, eps, as_bf16(y));
}
void add_rms_norm(GpuContext& ctx, float* residual, const float* delta, std::int64_t rows, std::int64_t dim,
                  const bf16* weight, float eps, float* y) {
  launch_rms_norm(ctx, residual, delta, rows, dim, weight, eps, y);
}
void add_rms_norm(GpuContext& ctx, float* residual, const float* delta, std::int64_t rows, std::int64_t dim,
                  const bf16* weight, float eps, bf16* y) {
  launch_rms_norm(ctx, residual, delta, rows, dim, weight, eps, as_bf16(y));
}

void embedding(GpuContext& ctx, const int* ids, std::int64_t tokens, const bf16* table, std::int64_t vocab_begin,
               std::int64_t vocab_rows, std::int64_t hidden, float* out) {
  if (tokens == 0) return;
  launch(ctx, embedding_kernel, static_cast<unsigned>(tokens), 256, ids, as_bf16(table), vocab_begin, vocab_rows,
         hidden, out);
}

void argmax(GpuContext& ctx, const float* logits, std::int64_t rows, std::int64_t vocab, int* ids,
            std::int64_t stride, float* values) {
  if (rows == 0) return;
  launch(ctx, argmax_kernel, static_cast<unsigned>(rows), 1024, logits, vocab, stride ? stride : vocab, ids, values);
}

void split_qkv_rope_cache(GpuContext& ctx, const float* qkv, std::int64_t tokens, std::int64_t q_heads,
                          std::int64_t kv_heads, std::int64_t head_dim, const bf16* bias, const int* positions,
                          const float* inv_freq, const std::int64_t* slots, float* q, bf16* k_cache, bf16* v_cache) {
  if (tokens == 0) return;
  const std::int64_t items = (q_heads + kv_heads) * (head_dim / 2) + kv_heads * head_dim;
  launch(ctx, split_qkv_rope_cache_kernel, dim3(static_cast<unsigned>(tokens), blocks_for(items, 256)), 256, qkv,
         static_cast<int>(q_heads), static_cast<int>(kv_heads), static_cast<int>(head_dim),
         bias ? as_bf16(bias) : nullptr, positions, inv_freq, slots, q, as_bf16(k_cache), as_bf16(v_cache));
}

void silu_mul(GpuContext& ctx, const float* gate_up, std::int64_t rows, std::int64_t ffn, float* out) {
  launch_silu_mul(ctx, gate_up, rows, ffn, out);
}
void silu_mul(GpuContext& ctx, const float* gate_up, std::int64_t rows, std::int64_t ffn, bf16* out) {
  launch_silu_mul(ctx, gate_up, rows, ffn, as_bf16(out));
}

namespace {

// The attention kernel keeps a tile's V rows in dynamic shared memory: up to 128 KB, past the
// 48 KB a launch gets unasked. Allowed once per instantiation; the carveout favours shared
// memory over L1, which the streamed K rows gain little from.
std::size_t v_tile_bytes(int max_d) { return static_cast<std::size_t>(kAttnTile) * max_d * sizeof(bf16); }

template <int kMaxD>
auto allow_v_tile() {
  static const bool allowed = [] {
    LS_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_kernel<kMaxD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(v_tile_bytes(kMaxD))));
    LS_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_kernel<kMaxD>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                       static_cast<int>(cudaSharedmemCarveoutMaxShared)));
    return true;
  }();
  (void)allowed;
  return paged_attention_kernel<kMaxD>;
}

}  // namespace

void paged_attention(GpuContext& ctx, const float* q, const bf16* k_cache, const bf16* v_cache, std::int64_t tokens,
                     std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                     const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks, float scale,
                     float* out, std::int64_t max_context) {
  LS_CHECK(head_dim > 0 && head_dim <= 256 && head_dim % 4 == 0,
           "paged_attention: head_dim " << head_dim << " is not a multiple of 4 up to 256");
  LS_CHECK(kv_heads > 0 && heads % kv_heads == 0, "paged_attention: heads " << heads << " not a multiple of kv_heads "
                                                                            << kv_heads);
  if (tokens == 0) return;
  const std::int64_t group = heads / kv_heads;
  const std::int64_t head_blocks = kv_heads * ((group + kAttnGroup - 1) / kAttnGroup);
  // Cut each token's context in equal splits while the grid still fits the GPU in one wave (2
  // blocks per SM at head_dim <= 128, 1 above: the kernels' launch bounds), so that batch 1 still
  // spreads over the GPU and big batches need no split: at most one split per 64 positions of
  // the longest context, at most kMaxSplits. A split is a block's whole latency chain (q, slots,
  // K, softmax, V, partial, merge), so a second wave of blocks costs as much as the first: batch
  // 32 at 256 positions cut in 3 (384 blocks on 264 slots) took 51 us where 2 would fill one wave.
  constexpr int kMinSplitLen = 64;  // a split shorter than the tile's first pass saves no time
  const std::int64_t context = max_context > 0 ? max_context : max_blocks * block_size;
  const std::int64_t resident = static_cast<std::int64_t>(ctx.sm_count()) * (head_dim <= 128 ? 2 : 1);
  const std::int64_t wanted = resident / (tokens * head_blocks);
  const int splits = static_cast<int>(
      std::clamp<std::int64_t>(std::min(wanted, (context + kMinSplitLen - 1) / kMinSplitLen), 1, kMaxSplits));
  const std::size_t partial_bytes =
      static_cast<std::size_t>(tokens * heads * splits) * partial_stride(static_cast<int>(head_dim)) * sizeof(float);
  float* partial = splits > 1 ? static_cast<float*>(ctx.scratch(partial_bytes)) : nullptr;
  int* counters = splits > 1 ? ctx.zeroed_counters(static_cast<std::size_t>(tokens * head_blocks)) : nullptr;
  const dim3 grid(static_cast<unsigned>(tokens), static_cast<unsigned>(head_blocks), static_cast<unsigned>(splits));
  auto attend = [&](auto kernel, int max_d) {
    launch_with_smem(ctx, kernel, grid, kAttnThreads, v_tile_bytes(max_d), q, as_bf16(k_cache), as_bf16(v_cache),
                     static_cast<int>(head_dim), heads, kv_heads, block_size, seq_of, pos, block_tables, max_blocks,
                     scale, out, partial, counters);
  };
  if (head_dim <= 64) attend(allow_v_tile<64>(), 64);
  else if (head_dim <= 128) attend(allow_v_tile<128>(), 128);
  else attend(allow_v_tile<256>(), 256);
}

}  // namespace lockstep::cuda
