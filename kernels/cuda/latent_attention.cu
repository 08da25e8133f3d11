// CUDA kernels of MLA (see kernels/latent_attention.h);
// cpu/latent_attention.cc is the reference they are tested against. The absorb, the attention
// and the expand are each spread over enough blocks to fill the GPU at decode (batch 1 included);
// RoPE and the cache write are a block per token.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/split_kv_merge.cuh"
#include "kernels/fatal.h"
#include "kernels/gpu_context.h"
#include "kernels/latent_attention.h"

namespace lockstep::cuda {
namespace {

constexpr int kThreads = 256, kWarps = kThreads / kWarp;

// Sum / max over the block (kThreads threads); every thread gets the result.
__device__ float block_reduce(float v, bool max) {
  __shared__ float partial[kWarps];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = max ? warp_max(v) : warp_sum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < kWarps ? partial[lane] : (max ? -INFINITY : 0.0f);
  return max ? warp_max(v) : warp_sum(v);
}

// Pair i of a rope_dim vector (interleaved: 2i and 2i + 1; else i and i + half) turned by angle.
__device__ __forceinline__ void turn_pair(const float* in, int i, int half, bool interleaved, float cos_a, float sin_a,
                                          float& first, float& second) {
  const float a = interleaved ? in[2 * i] : in[i], b = interleaved ? in[2 * i + 1] : in[i + half];
  first = a * cos_a - b * sin_a;
  second = b * cos_a + a * sin_a;
}

// A block per token: the heads' rope values into shared memory first (interleaved pairs are
// written to other places than they are read from), then turned.
__global__ void rope_pairs_kernel(float* x, int heads, std::int64_t token_stride, std::int64_t head_stride,
                                  int rope_dim, const int* pos, const float* inv_freq, float factor, bool interleaved) {
  dependent_launch_enter();
  extern __shared__ float values[];
  float* base = x + blockIdx.x * token_stride;
  for (int i = threadIdx.x; i < heads * rope_dim; i += blockDim.x)
    values[i] = base[(i / rope_dim) * head_stride + i % rope_dim];
  __syncthreads();
  const int half = rope_dim / 2;
  const float p = static_cast<float>(pos[blockIdx.x]);
  for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
    const int h = j / half, i = j % half;
    float s, c;
    sincosf(p * inv_freq[i], &s, &c);
    float first, second;
    turn_pair(values + h * rope_dim, i, half, interleaved, c * factor, s * factor, first, second);
    base[h * head_stride + i] = first;
    base[h * head_stride + i + half] = second;
  }
}

template <typename T>
__global__ void mla_cache_write_kernel(const float* kv, int kv_lora, int rope_dim, const T* norm_weight, float eps,
                                       const int* pos, const float* inv_freq, float factor, bool interleaved,
                                       const std::int64_t* slots, T* cache) {
  dependent_launch_enter();
  const int width = kv_lora + rope_dim;
  const float* row = kv + static_cast<std::int64_t>(blockIdx.x) * width;
  T* out = cache + slots[blockIdx.x] * width;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < kv_lora; i += blockDim.x) ss += row[i] * row[i];
  const float inv = rsqrtf(block_reduce(ss, false) / static_cast<float>(kv_lora) + eps);
  for (int i = threadIdx.x; i < kv_lora; i += blockDim.x) store(out + i, row[i] * inv * to_float(norm_weight[i]));
  const int half = rope_dim / 2;
  const float p = static_cast<float>(pos[blockIdx.x]);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float s, c;
    sincosf(p * inv_freq[i], &s, &c);
    float first, second;
    turn_pair(row + kv_lora, i, half, interleaved, c * factor, s * factor, first, second);
    store(out + kv_lora + i, first);
    store(out + kv_lora + i + half, second);
  }
}

// q_latent = W_UK(h)^T q_nope: a block per (head, 64 latent columns, kTokens tokens). Its threads
// are 8 column groups (8 consecutive columns, one 16-byte load of a row) x 32 row groups (rows
// g, g + 32, ... of the head's nope rows), so a decode step's 2 MB of W_UK (16 heads) is spread
// over 128 blocks instead of one block a head walking its 128 KB serially; the row groups' sums
// then meet in shared memory, added in a fixed order. A thread's first row piece is a weight,
// read before the dependent-launch wait (see mla_expand_v_kernel).
constexpr int kAbsorbColumns = 64, kAbsorbRowGroups = kThreads / (kAbsorbColumns / 8), kTokens = 4;
template <typename T>
__global__ void __launch_bounds__(kThreads)
mla_absorb_q_kernel(const float* q, int tokens, std::int64_t q_token_stride, std::int64_t q_head_stride, const T* kv_b,
                    int nope, int v, int kv_lora, float* q_latent) {
  extern __shared__ float absorb_smem[];
  float* qn = absorb_smem;                                   // [kTokens][nope]
  float* sums = absorb_smem + kTokens * nope;                // [row groups][kTokens][64]
  const int h = blockIdx.x, heads = gridDim.x, c0 = blockIdx.y * kAbsorbColumns, t0 = blockIdx.z * kTokens;
  const int n = min(kTokens, tokens - t0);
  const int group = threadIdx.x % (kAbsorbColumns / 8), rows = threadIdx.x / (kAbsorbColumns / 8);
  const int c = c0 + 8 * group;
  const T* w = kv_b + static_cast<std::int64_t>(h) * (nope + v) * kv_lora;
  const bool vectors = kv_lora % 8 == 0;
  uint4 early{};
  if (vectors && c < kv_lora && rows < nope)
    early = __ldg(reinterpret_cast<const uint4*>(w + static_cast<std::int64_t>(rows) * kv_lora + c));
  dependent_launch_enter();
  for (int i = threadIdx.x; i < kTokens * nope; i += kThreads) {
    const int t = i / nope;
    qn[i] = t < n ? q[(t0 + t) * q_token_stride + h * q_head_stride + i % nope] : 0.0f;
  }
  __syncthreads();
  float acc[kTokens][8] = {};
  if (c < kv_lora) {
    for (int i = rows; i < nope; i += kAbsorbRowGroups) {
      const T* row = w + static_cast<std::int64_t>(i) * kv_lora + c;
      float f[8];
      if (vectors) {
        unpack_x8<T>(i == rows ? early : __ldg(reinterpret_cast<const uint4*>(row)), f);
      } else {
#pragma unroll
        for (int k = 0; k < 8; ++k) f[k] = c + k < kv_lora ? to_float(row[k]) : 0.0f;
      }
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        const float x = qn[t * nope + i];
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[t][k] = fmaf(x, f[k], acc[t][k]);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kTokens; ++t)
#pragma unroll
    for (int k = 0; k < 8; ++k) sums[(rows * kTokens + t) * kAbsorbColumns + 8 * group + k] = acc[t][k];
  __syncthreads();
  // A thread per (token, column) of the block's outputs: kTokens x 64 = kThreads.
  const int t = threadIdx.x / kAbsorbColumns, col = threadIdx.x % kAbsorbColumns;
  if (t < n && c0 + col < kv_lora) {
    float total = 0.0f;
    for (int r = 0; r < kAbsorbRowGroups; ++r) total += sums[(r * kTokens + t) * kAbsorbColumns + col];
    q_latent[(static_cast<std::int64_t>(t0 + t) * heads + h) * kv_lora + c0 + col] = total;
  }
}
static_assert(kTokens * kAbsorbColumns == kThreads, "the absorb's output pass: a thread per (token, column)");

// out = W_UV(h) o_latent: a block per (head, 8 of its v rows, kTokens tokens), a warp per row,
// its lanes reading the row in 16-byte pieces, the tokens' latents staged in shared memory. A
// lane's first kExpandEarly pieces are weights (never written by a kernel), so they are read
// before the dependent-launch wait, while the attention before it still runs.
constexpr int kExpandRows = kWarps, kExpandEarly = 2;
template <typename T>
__global__ void __launch_bounds__(kThreads)
mla_expand_v_kernel(const float* o_latent, int tokens, const T* kv_b, int nope, int v, int kv_lora, float* out) {
  extern __shared__ float expand_smem[];  // [kTokens][kv_lora]
  const int h = blockIdx.x, heads = gridDim.x, t0 = blockIdx.z * kTokens, n = min(kTokens, tokens - t0);
  const int lane = threadIdx.x % kWarp, j = blockIdx.y * kExpandRows + threadIdx.x / kWarp;
  const T* row = kv_b + (static_cast<std::int64_t>(h) * (nope + v) + nope + min(j, v - 1)) * kv_lora;
  const bool vectors = kv_lora % 8 == 0;
  uint4 early[kExpandEarly] = {};
#pragma unroll
  for (int i = 0; i < kExpandEarly; ++i)
    if (const int p = lane + i * kWarp; vectors && j < v && p < kv_lora / 8)
      early[i] = __ldg(reinterpret_cast<const uint4*>(row) + p);
  dependent_launch_enter();
  for (int i = threadIdx.x; i < kTokens * kv_lora; i += kThreads) {
    const int t = i / kv_lora;
    expand_smem[i] = t < n ? o_latent[(static_cast<std::int64_t>(t0 + t) * heads + h) * kv_lora + i % kv_lora] : 0.0f;
  }
  __syncthreads();
  if (j >= v) return;
  float acc[kTokens] = {};
  if (vectors) {
    for (int p = lane, i = 0; p < kv_lora / 8; p += kWarp, ++i) {
      float f[8];
      static_assert(kExpandEarly == 2, "the pieces read early are picked by constant index (registers)");
      unpack_x8<T>(i == 0 ? early[0] : i == 1 ? early[1] : __ldg(reinterpret_cast<const uint4*>(row) + p), f);
#pragma unroll
      for (int t = 0; t < kTokens; ++t)
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[t] = fmaf(f[k], expand_smem[t * kv_lora + 8 * p + k], acc[t]);
    }
  } else {
    for (int k = lane; k < kv_lora; k += kWarp) {
      const float f = to_float(row[k]);
#pragma unroll
      for (int t = 0; t < kTokens; ++t) acc[t] = fmaf(f, expand_smem[t * kv_lora + k], acc[t]);
    }
  }
#pragma unroll
  for (int t = 0; t < kTokens; ++t) {
    const float total = warp_sum(acc[t]);
    if (lane == 0 && t < n) out[(static_cast<std::int64_t>(t0 + t) * heads + h) * v + j] = total;
  }
}

// Latent attention: a block per (token, up to kHeadGroup heads, split of the context). Every head
// reads the same cached rows (MLA's cache is shared by the heads), so a block serves a group of
// heads from each row it reads; a decode step's context is cut into splits over the GPU's SMs and
// merged by the last block to finish (split_kv_merge.cuh). Before, a block per (token, head)
// walked the whole context: 16 blocks for a batch-1 step at Moonlight's shapes, ~90 us a layer.
// A block's time is set by its instructions, not by its reads (~40 us a tile of 32 positions
// for 16 heads), so a step too small to fill the SMs gets smaller head groups
// (latent_attention_grid): batch 1, 16 heads, 256 positions: 8 blocks of 16 heads 47.3 us, 128
// blocks of one head 13.3 us on an H200.
// The context goes in tiles of kTile positions: the tile's rows copied into shared memory at
// once (all copies in flight together; read where used, every position was a chain of
// dependent loads: batch 1, 16 heads, 256 positions, 57.9 -> 47.2 us on an H200), then three
// phases: scores (a warp per head, its q in registers, its lanes reading 8 staged rows at a
// time in 16-byte pieces), the online softmax (a warp per head, a lane per position), then the
// weighted sum (a thread per kColumns latent columns, all the group's heads).
constexpr int kHeadGroup = 16, kTile = 32, kPositionsAtOnce = 8;
constexpr int kMaxPieces = static_cast<int>(kMaxLatentWidth) / 8 / kWarp;  // a lane's 16-byte pieces of a row
static_assert(kTile == kWarp, "the softmax: a lane per position of a tile");
static_assert(kTile % kPositionsAtOnce == 0, "the scores take a tile's rows 8 at a time");

// The block's shared memory: the tile's slots, q of the group's heads (or the merge's weights),
// the tile's rows (16-bit values), the scores and the softmax state; each part 16-byte aligned.
struct AttentionSmem {
  int q_floats, row_values;
  __host__ __device__ AttentionSmem(int group, int width)
      : q_floats((group * (width > kMaxSplits ? width : kMaxSplits) + 3) / 4 * 4), row_values(kTile * width) {}
  __host__ __device__ std::size_t bytes() const {
    return kTile * sizeof(std::int64_t) + q_floats * sizeof(float) + row_values * 2 +
           (kHeadGroup * kTile + 3 * kHeadGroup) * sizeof(float);
  }
};

template <typename T, int kColumns>
__global__ void __launch_bounds__(kThreads)
latent_attention_kernel(const float* q_latent, const float* q_rope, std::int64_t rope_token_stride,
                        std::int64_t rope_head_stride, const T* cache, int heads, int group, int kv_lora, int rope_dim,
                        int block_size, const int* seq_of, const int* pos, const int* block_tables, int max_blocks,
                        int split_len, float scale, float* o_latent, float* partial, int* counters) {
  static_assert(sizeof(T) == 2, "AttentionSmem counts 16-bit cache values");
  dependent_launch_enter();
  extern __shared__ __align__(16) unsigned char attention_smem[];
  const int width = kv_lora + rope_dim;
  const AttentionSmem layout(group, width);
  std::int64_t* slot_s = reinterpret_cast<std::int64_t*>(attention_smem);  // [kTile]
  float* q_s = reinterpret_cast<float*>(slot_s + kTile);                  // [group][width]
  T* rows_s = reinterpret_cast<T*>(q_s + layout.q_floats);                // [kTile][width]
  float* p_s = reinterpret_cast<float*>(rows_s + layout.row_values);      // [kHeadGroup][kTile]
  float* m_s = p_s + kHeadGroup * kTile;  // running max, sum, and this tile's correction
  float* l_s = m_s + kHeadGroup;
  float* c_s = l_s + kHeadGroup;
  const int t = blockIdx.x, h0 = blockIdx.y * group, n_heads = min(group, heads - h0), split = blockIdx.z;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  for (int i = threadIdx.x; i < n_heads * width; i += kThreads) {  // in flight with the first tile's rows
    const int h = h0 + i / width, k = i % width;
    __pipeline_memcpy_async(q_s + i,
                            k < kv_lora ? q_latent + (static_cast<std::int64_t>(t) * heads + h) * kv_lora + k
                                        : q_rope + t * rope_token_stride + h * rope_head_stride + k - kv_lora,
                            sizeof(float));
  }
  if (threadIdx.x < kHeadGroup) m_s[threadIdx.x] = -INFINITY, l_s[threadIdx.x] = 0.0f;
  const int* table = block_tables + static_cast<std::int64_t>(seq_of[t]) * max_blocks;
  const bool vectors = width % 8 == 0;  // then every row starts 16-byte aligned
  const int len = pos[t] + 1, begin = split * split_len;
  const int end = split + 1 == static_cast<int>(gridDim.z) ? len : min(len, begin + split_len);
  const int c0 = threadIdx.x * kColumns;
  float acc[kHeadGroup][kColumns] = {};
  for (int start = begin; start < end; start += kTile) {
    const int n = min(kTile, end - start);
    if (threadIdx.x < n) {
      const int p = start + threadIdx.x;
      slot_s[threadIdx.x] = static_cast<std::int64_t>(table[p / block_size]) * block_size + p % block_size;
    }
    __syncthreads();  // the slots; and the previous tile is done with rows_s
    if (vectors) {
      const int pieces = width / 8;
      for (int e = threadIdx.x; e < n * pieces; e += kThreads) {
        const int i = e / pieces, c = e % pieces;
        __pipeline_memcpy_async(rows_s + i * width + 8 * c, cache + slot_s[i] * width + 8 * c, 16);
      }
    } else {
      for (int e = threadIdx.x; e < n * width; e += kThreads)
        rows_s[e] = cache[slot_s[e / width] * width + e % width];
    }
    __pipeline_commit();
    __pipeline_wait_prior(0);
    __syncthreads();
    if (vectors && n_heads >= kWarps) {
      // A warp per head, its q pieces in registers, reading the staged rows 8 positions at a
      // time (their warp sums interleave): with every warp busy, this beats a warp per position
      // reading every head's q from shared memory (16 heads, batch 32: 87 -> 66 us on an H200).
      const int pieces = width / 8;
      for (int h = warp; h < n_heads; h += kWarps) {
        float qf[kMaxPieces][8];
#pragma unroll
        for (int k = 0; k < kMaxPieces; ++k) {
          const int c = lane + k * kWarp;
          const float4 a = c < pieces ? reinterpret_cast<const float4*>(q_s + h * width)[2 * c] : float4{};
          const float4 b = c < pieces ? reinterpret_cast<const float4*>(q_s + h * width)[2 * c + 1] : float4{};
          qf[k][0] = a.x, qf[k][1] = a.y, qf[k][2] = a.z, qf[k][3] = a.w;
          qf[k][4] = b.x, qf[k][5] = b.y, qf[k][6] = b.z, qf[k][7] = b.w;
        }
        for (int i0 = 0; i0 < n; i0 += kPositionsAtOnce) {
          float s[kPositionsAtOnce] = {};
#pragma unroll
          for (int u = 0; u < kPositionsAtOnce; ++u) {
            const uint4* row = reinterpret_cast<const uint4*>(rows_s + (i0 + u) * width);  // past n: unused
#pragma unroll
            for (int k = 0; k < kMaxPieces; ++k) {
              const int c = lane + k * kWarp;
              if (c >= pieces) break;
              float f[8];
              unpack_x8<T>(row[c], f);
#pragma unroll
              for (int j = 0; j < 8; ++j) s[u] = fmaf(qf[k][j], f[j], s[u]);
            }
          }
#pragma unroll
          for (int u = 0; u < kPositionsAtOnce; ++u) s[u] = warp_sum(s[u]);
          if (lane < kPositionsAtOnce && i0 + lane < n) {
            float mine = s[0];
#pragma unroll
            for (int u = 1; u < kPositionsAtOnce; ++u)
              if (lane == u) mine = s[u];
            p_s[h * kTile + i0 + lane] = mine * scale;
          }
        }
      }
    } else {
      // Fewer heads than warps: a warp per position, its lanes reading the row (in 16-byte
      // pieces where it can) and keeping a sum per head, q from shared memory.
      for (int i = warp; i < n; i += kWarps) {
        const T* row = rows_s + i * width;
        float s[kHeadGroup] = {};
        if (vectors) {
          for (int c = lane; c < width / 8; c += kWarp) {
            float f[8];
            unpack_x8<T>(reinterpret_cast<const uint4*>(row)[c], f);
#pragma unroll
            for (int h = 0; h < kHeadGroup; ++h) {
              if (h >= n_heads) break;
              const float4 a = reinterpret_cast<const float4*>(q_s + h * width)[2 * c];
              const float4 b = reinterpret_cast<const float4*>(q_s + h * width)[2 * c + 1];
              s[h] += a.x * f[0] + a.y * f[1] + a.z * f[2] + a.w * f[3] + b.x * f[4] + b.y * f[5] + b.z * f[6] +
                      b.w * f[7];
            }
          }
        } else {
          for (int k = lane; k < width; k += kWarp) {
            const float f = to_float(row[k]);
#pragma unroll
            for (int h = 0; h < kHeadGroup; ++h) {
              if (h >= n_heads) break;
              s[h] = fmaf(q_s[h * width + k], f, s[h]);
            }
          }
        }
#pragma unroll
        for (int h = 0; h < kHeadGroup; ++h) {
          if (h >= n_heads) break;
          const float total = warp_sum(s[h]);
          if (lane == h) p_s[h * kTile + i] = total * scale;
        }
      }
    }
    __syncthreads();
    for (int h = warp; h < n_heads; h += kWarps) {
      const float score = lane < n ? p_s[h * kTile + lane] : -INFINITY;
      const float old_max = m_s[h], new_max = fmaxf(old_max, warp_max(score));
      const float e = lane < n ? __expf(score - new_max) : 0.0f;
      const float sum = warp_sum(e);
      p_s[h * kTile + lane] = e;
      __syncwarp();
      if (lane == 0) {
        const float correction = old_max == -INFINITY ? 0.0f : __expf(old_max - new_max);
        c_s[h] = correction;
        l_s[h] = l_s[h] * correction + sum;
        m_s[h] = new_max;
      }
    }
    __syncthreads();
#pragma unroll
    for (int h = 0; h < kHeadGroup; ++h) {
      if (h >= n_heads) break;
#pragma unroll
      for (int j = 0; j < kColumns; ++j) acc[h][j] *= c_s[h];
    }
    if (c0 < kv_lora) {
      for (int i = 0; i < n; ++i) {
        const T* row = rows_s + i * width;
        float f[kColumns];
#pragma unroll
        for (int j = 0; j < kColumns; ++j) f[j] = c0 + j < kv_lora ? to_float(row[c0 + j]) : 0.0f;
#pragma unroll
        for (int h = 0; h < kHeadGroup; ++h) {
          if (h >= n_heads) break;
          const float w = p_s[h * kTile + i];
#pragma unroll
          for (int j = 0; j < kColumns; ++j) acc[h][j] = fmaf(w, f[j], acc[h][j]);
        }
      }
    }
    __syncthreads();  // p_s and c_s are rewritten by the next tile
  }
  __pipeline_commit();
  __pipeline_wait_prior(0);  // an empty split still waits for its q copies before the merge reuses q_s
  __syncthreads();
  const std::int64_t th0 = static_cast<std::int64_t>(t) * heads + h0;
  if (gridDim.z == 1) {
#pragma unroll
    for (int h = 0; h < kHeadGroup; ++h) {
      if (h >= n_heads) break;
#pragma unroll
      for (int j = 0; j < kColumns; ++j)
        if (c0 + j < kv_lora) o_latent[(th0 + h) * kv_lora + c0 + j] = acc[h][j] / l_s[h];
    }
    return;
  }
  // Unnormalised partials (an empty split: l = 0, m = -inf, acc = 0), merged by the last split.
  const int splits = gridDim.z, stride = partial_stride(kv_lora);
#pragma unroll
  for (int h = 0; h < kHeadGroup; ++h) {
    if (h >= n_heads) break;
    float* p = partial + ((th0 + h) * splits + split) * stride;
#pragma unroll
    for (int j = 0; j < kColumns; ++j)
      if (c0 + j < kv_lora) p[c0 + j] = acc[h][j];
    if (threadIdx.x == 0) p[kv_lora] = m_s[h], p[kv_lora + 1] = l_s[h];
  }
  merge_splits_if_last(partial, counters + static_cast<std::int64_t>(t) * gridDim.y + blockIdx.y, th0, n_heads,
                       kv_lora, q_s, o_latent);
}

}  // namespace

void rope_pairs(GpuContext& ctx, float* x, std::int64_t tokens, std::int64_t heads, std::int64_t token_stride,
                std::int64_t head_stride, std::int64_t rope_dim, const int* pos, const float* inv_freq,
                float attention_factor, bool interleaved) {
  if (tokens == 0 || heads == 0) return;
  LS_CHECK(heads * rope_dim * sizeof(float) <= 48 * 1024, "rope_pairs: " << heads << " heads of " << rope_dim
                                                                          << " RoPE values exceed a block's shared memory");
  launch_with_smem(ctx, rope_pairs_kernel, static_cast<unsigned>(tokens), kThreads,
                   static_cast<std::size_t>(heads * rope_dim) * sizeof(float), x, static_cast<int>(heads), token_stride,
                   head_stride, static_cast<int>(rope_dim), pos, inv_freq, attention_factor, interleaved);
}

template <HalfFloat W>
void mla_cache_write(GpuContext& ctx, const float* kv, std::int64_t tokens, std::int64_t kv_lora, std::int64_t rope_dim,
                     const W* norm_weight, float eps, const int* pos, const float* inv_freq, float attention_factor,
                     bool interleaved, const std::int64_t* slots, W* cache) {
  if (tokens == 0) return;
  launch(ctx, mla_cache_write_kernel<device_t<W>>, static_cast<unsigned>(tokens), kThreads, kv,
         static_cast<int>(kv_lora), static_cast<int>(rope_dim), on_device(norm_weight), eps, pos, inv_freq,
         attention_factor, interleaved, slots, on_device(cache));
}

template <HalfFloat W>
void mla_absorb_q(GpuContext& ctx, const float* q, std::int64_t tokens, std::int64_t heads,
                  std::int64_t q_token_stride, std::int64_t q_head_stride, const W* kv_b, std::int64_t nope,
                  std::int64_t v, std::int64_t kv_lora, float* q_latent) {
  if (tokens == 0 || heads == 0) return;
  const std::size_t smem = (kTokens * nope + kAbsorbRowGroups * kTokens * kAbsorbColumns) * sizeof(float);
  LS_CHECK(smem <= 48 * 1024, "mla_absorb_q: qk_nope_head_dim " << nope << " exceeds a block's shared memory");
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>((kv_lora + kAbsorbColumns - 1) / kAbsorbColumns),
                  static_cast<unsigned>((tokens + kTokens - 1) / kTokens));
  launch_with_smem(ctx, mla_absorb_q_kernel<device_t<W>>, grid, kThreads, smem, q, static_cast<int>(tokens),
                   q_token_stride, q_head_stride, on_device(kv_b), static_cast<int>(nope), static_cast<int>(v),
                   static_cast<int>(kv_lora), q_latent);
}

template <HalfFloat W>
void mla_expand_v(GpuContext& ctx, const float* o_latent, std::int64_t tokens, std::int64_t heads, const W* kv_b,
                  std::int64_t nope, std::int64_t v, std::int64_t kv_lora, float* out) {
  if (tokens == 0 || heads == 0) return;
  const std::size_t smem = kTokens * kv_lora * sizeof(float);
  LS_CHECK(smem <= 48 * 1024, "mla_expand_v: kv_lora_rank " << kv_lora << " exceeds a block's shared memory");
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>((v + kExpandRows - 1) / kExpandRows),
                  static_cast<unsigned>((tokens + kTokens - 1) / kTokens));
  launch_with_smem(ctx, mla_expand_v_kernel<device_t<W>>, grid, kThreads, smem, o_latent, static_cast<int>(tokens),
                   on_device(kv_b), static_cast<int>(nope), static_cast<int>(v), static_cast<int>(kv_lora), out);
}

// The heads a block serves: up to kHeadGroup, fewer where their q rows and the tile's rows would
// not fit the shared memory a block may have (smem_limit, the GPU's opt-in maximum).
std::int64_t latent_head_group(std::int64_t heads, std::int64_t width, std::size_t smem_limit) {
  std::int64_t group = std::min<std::int64_t>(kHeadGroup, heads);
  while (group > 1 && AttentionSmem(static_cast<int>(group), static_cast<int>(width)).bytes() > smem_limit) --group;
  return group;
}

// The dynamic shared memory a block may ask for: the GPU's opt-in maximum less 1 KB for the
// kernel's static shared memory (the merge's flag), which the maximum also covers.
std::size_t attention_smem_limit(const GpuContext& ctx) { return ctx.max_block_shared_memory() - 1024; }

LatentAttentionGrid latent_attention_grid(const GpuContext& ctx, std::int64_t tokens, std::int64_t heads,
                                          std::int64_t kv_lora, std::int64_t rope_dim, std::int64_t max_context) {
  const std::int64_t fits = latent_head_group(heads, kv_lora + rope_dim, attention_smem_limit(ctx));
  if (tokens <= 0 || heads <= 0 || max_context <= 0) return {fits, 1};
  // Splits: enough to give every SM a block, none shorter than a tile (none where kv_lora is not
  // a multiple of 4: the merge reads 4 floats at a time). A block's time grows with its heads
  // (its warps go through every head's scores and sums), so where even the most splits leave
  // SMs idle the groups shrink until the blocks cover the SMs (a batch-1 step at Moonlight's
  // 16 heads and 256 positions: 8 blocks of 16 heads, ~45 us; see the kernel).
  const std::int64_t sms = ctx.sm_count();
  const std::int64_t most = kv_lora % 4 ? 1 : std::min<std::int64_t>((max_context + kTile - 1) / kTile, kMaxSplits);
  for (std::int64_t group = fits;;) {
    const std::int64_t head_blocks = (heads + group - 1) / group;
    group = (heads + head_blocks - 1) / head_blocks;  // the same blocks, the heads spread evenly
    const std::int64_t blocks = tokens * head_blocks;
    const int splits = static_cast<int>(std::clamp<std::int64_t>((sms + blocks - 1) / blocks, 1, most));
    if (blocks * splits >= sms || group == 1) return {group, splits};
    group = std::min(group - 1, (heads + head_blocks) / (head_blocks + 1));  // at least one more head block
  }
}

template <HalfFloat W>
void latent_attention(GpuContext& ctx, const float* q_latent, const float* q_rope, std::int64_t rope_token_stride,
                      std::int64_t rope_head_stride, const W* cache, std::int64_t tokens, std::int64_t heads,
                      std::int64_t kv_lora, std::int64_t rope_dim, std::int64_t block_size, const int* seq_of,
                      const int* pos, const int* block_tables, std::int64_t max_blocks, float scale, float* o_latent,
                      std::int64_t max_context, int splits) {
  if (tokens == 0 || heads == 0) return;
  const std::int64_t width = kv_lora + rope_dim;
  LS_CHECK(width <= kMaxLatentWidth, "latent_attention: kv_lora_rank + qk_rope_head_dim " << width << " > "
                                                                                           << kMaxLatentWidth);
  if (max_context <= 0) max_context = max_blocks * block_size;
  LatentAttentionGrid chosen{latent_head_group(heads, width, attention_smem_limit(ctx)), splits};
  if (splits <= 0) chosen = latent_attention_grid(ctx, tokens, heads, kv_lora, rope_dim, max_context);
  splits = chosen.splits;
  LS_CHECK(splits <= kMaxSplits && (splits == 1 || kv_lora % 4 == 0),
           "latent_attention: " << splits << " splits (at most " << kMaxSplits << ", and kv_lora_rank a multiple of 4)");
  const int group = static_cast<int>(chosen.group);
  const std::size_t smem = AttentionSmem(group, static_cast<int>(width)).bytes();
  LS_CHECK(smem <= attention_smem_limit(ctx), "latent_attention: a block's " << smem << " bytes of shared memory "
                                                 << "exceed the GPU's " << attention_smem_limit(ctx));
  const std::int64_t head_blocks = (heads + group - 1) / group;
  const SplitScratch scratch = split_scratch(ctx, tokens, heads, head_blocks, kv_lora, splits);
  const int split_len = static_cast<int>((max_context + splits - 1) / splits);
  const dim3 grid(static_cast<unsigned>(tokens), static_cast<unsigned>(head_blocks), static_cast<unsigned>(splits));
  auto attend = [&](auto kernel) {
    static const bool allowed = [&] {  // past the default 48 KB: opted in once per kernel
      LS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(attention_smem_limit(ctx))));
      return true;
    }();
    (void)allowed;
    launch_with_smem(ctx, kernel, grid, kThreads, smem, q_latent, q_rope, rope_token_stride, rope_head_stride,
                     on_device(cache), static_cast<int>(heads), group, static_cast<int>(kv_lora),
                     static_cast<int>(rope_dim), static_cast<int>(block_size), seq_of, pos, block_tables,
                     static_cast<int>(max_blocks), split_len, scale, o_latent, scratch.partial, scratch.counters);
  };
  using T = device_t<W>;
  const std::int64_t columns = (kv_lora + kThreads - 1) / kThreads;
  if (columns <= 1) attend(latent_attention_kernel<T, 1>);
  else if (columns == 2) attend(latent_attention_kernel<T, 2>);
  else attend(latent_attention_kernel<T, 4>);
}

#define LOCKSTEP_MLA_CUDA_OPS(W)                                                                                       \
  template void mla_cache_write<W>(GpuContext&, const float*, std::int64_t, std::int64_t, std::int64_t, const W*,      \
                                   float, const int*, const float*, float, bool, const std::int64_t*, W*);            \
  template void mla_absorb_q<W>(GpuContext&, const float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,     \
                                const W*, std::int64_t, std::int64_t, std::int64_t, float*);                           \
  template void mla_expand_v<W>(GpuContext&, const float*, std::int64_t, std::int64_t, const W*, std::int64_t,         \
                                std::int64_t, std::int64_t, float*);                                                   \
  template void latent_attention<W>(GpuContext&, const float*, const float*, std::int64_t, std::int64_t, const W*,     \
                                    std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, const int*, \
                                    const int*, const int*, std::int64_t, float, float*, std::int64_t, int);
LOCKSTEP_MLA_CUDA_OPS(bf16)
LOCKSTEP_MLA_CUDA_OPS(fp16)
#undef LOCKSTEP_MLA_CUDA_OPS

}  // namespace lockstep::cuda
