// CUDA kernels of the dense-transformer ops (see kernels/dense_ops.h); cpu/dense_ops.cc is the
// reference they are tested against. Every launch goes on the context's stream and is checked.
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
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

void check_launch() { LS_CUDA_CHECK(cudaGetLastError()); }

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
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) y[i] = __float2bfloat16_rn(x[i]);
}

__global__ void add_bias_kernel(float* y, std::int64_t rows, std::int64_t out, const __nv_bfloat16* bias) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < rows * out) y[i] += __bfloat162float(bias[i % out]);
}

// One block per row. With `delta`, residual += delta first (and is written back).
template <typename Out>
__global__ void rms_norm_kernel(float* x, const float* delta, std::int64_t dim, const __nv_bfloat16* weight,
                                float eps, Out* y) {
  float* xr = x + blockIdx.x * dim;
  const float* dr = delta ? delta + blockIdx.x * dim : nullptr;
  float ss = 0.0f;
  for (std::int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if (dr) xr[i] = v = v + dr[i];
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(dim) + eps);
  Out* yr = y + blockIdx.x * dim;
  for (std::int64_t i = threadIdx.x; i < dim; i += blockDim.x) store(yr + i, xr[i] * inv * __bfloat162float(weight[i]));
}

__global__ void embedding_kernel(const int* ids, const __nv_bfloat16* table, std::int64_t vocab_begin,
                                 std::int64_t vocab_rows, std::int64_t hidden, float* out) {
  const std::int64_t local = ids[blockIdx.x] - vocab_begin;
  float* o = out + blockIdx.x * hidden;
  const bool mine = local >= 0 && local < vocab_rows;
  for (std::int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    o[i] = mine ? __bfloat162float(table[local * hidden + i]) : 0.0f;
}

// One block per row: the largest value, the lowest index among equals.
__global__ void argmax_kernel(const float* logits, std::int64_t vocab, std::int64_t stride, int* ids, float* values) {
  const float* row = logits + blockIdx.x * stride;
  float best = -INFINITY;
  int best_i = 0x7fffffff;
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x)
    if (row[i] > best) best = row[i], best_i = static_cast<int>(i);  // ascending i: first max kept
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

// One block per token: its fused q|k|v row plus bias; threads take the (head, i < head_dim / 2)
// pairs of the q and k heads (rotated, to q or the K cache) and then the V elements.
__global__ void split_qkv_rope_cache_kernel(const float* qkv, std::int64_t q_heads, std::int64_t kv_heads,
                                            std::int64_t head_dim, const __nv_bfloat16* bias, const int* positions,
                                            const float* inv_freq, const std::int64_t* slots, float* q,
                                            __nv_bfloat16* k_cache, __nv_bfloat16* v_cache) {
  const std::int64_t t = blockIdx.x, half = head_dim / 2, rotated = q_heads + kv_heads;
  const std::int64_t row = (rotated + kv_heads) * head_dim, kv_row = kv_heads * head_dim;
  const float* x = qkv + t * row;
  const float position = static_cast<float>(positions[t]);
  __nv_bfloat16* k_out = k_cache + slots[t] * kv_row;
  for (std::int64_t g = threadIdx.x; g < rotated * half; g += blockDim.x) {
    const std::int64_t h = g / half, i = g % half, e = h * head_dim + i;
    float a = x[e], b = x[e + half];
    if (bias) a += __bfloat162float(bias[e]), b += __bfloat162float(bias[e + half]);
    float s, c;
    sincosf(position * inv_freq[i], &s, &c);
    const float lo = a * c - b * s, hi = b * c + a * s;
    if (h < q_heads) {
      q[t * q_heads * head_dim + e] = lo, q[t * q_heads * head_dim + e + half] = hi;
    } else {
      store(k_out + e - q_heads * head_dim, lo), store(k_out + e - q_heads * head_dim + half, hi);
    }
  }
  __nv_bfloat16* v_out = v_cache + slots[t] * kv_row;
  for (std::int64_t e = threadIdx.x; e < kv_row; e += blockDim.x) {
    const std::int64_t src = rotated * head_dim + e;
    store(v_out + e, x[src] + (bias ? __bfloat162float(bias[src]) : 0.0f));
  }
}

template <typename Out>
__global__ void silu_mul_kernel(const float* gate_up, std::int64_t rows, std::int64_t ffn, Out* out) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * ffn) return;
  const std::int64_t r = i / ffn, j = i % ffn;
  const float gate = gate_up[r * 2 * ffn + j], up = gate_up[r * 2 * ffn + ffn + j];
  store(out + i, gate / (1.0f + expf(-gate)) * up);
}

// One block per (token, KV head, split, chunk of that KV head's query heads): the token's context
// is cut in gridDim.z equal splits (the last may be shorter or empty), and the block reads each of
// those K/V rows once for up to kGroup query heads (GQA: the 7 of Qwen2-7B's KV heads share a
// read instead of re-reading it per head). Each warp walks its share of the positions (warp,
// warp + warps, ...) with an online softmax per head (lane l holds dims l, l + 32, ... below
// head_dim), then the warps merge. With one split the block writes the output; otherwise its
// unnormalised partial (max, sum, acc) per head for combine_splits_kernel (flash-decoding: long
// contexts use many SMs even at batch 1). kPerLane = ceil(head_dim / 32).
template <int kPerLane, int kGroup>
__global__ void paged_attention_kernel(const float* q, const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                                       int head_dim, std::int64_t heads, std::int64_t kv_heads,
                                       std::int64_t block_size, const int* seq_of, const int* pos,
                                       const int* block_tables, std::int64_t max_blocks, float scale, float* out,
                                       float* partial) {
  constexpr int kMaxWarps = 8, kMaxDim = kPerLane * kWarp;
  const int D = head_dim;
  const std::int64_t group = heads / kv_heads, chunks = (group + kGroup - 1) / kGroup;
  const std::int64_t t = blockIdx.x, kvh = blockIdx.y / chunks;
  const std::int64_t h0 = kvh * group + (blockIdx.y % chunks) * kGroup;  // this block's first query head
  const int n = static_cast<int>(min(static_cast<std::int64_t>(kGroup), kvh * group + group - h0));
  const std::int64_t row = kv_heads * D;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  const int* table = block_tables + static_cast<std::int64_t>(seq_of[t]) * max_blocks;
  const std::int64_t context = static_cast<std::int64_t>(pos[t]) + 1;
  const std::int64_t split_len = (context + gridDim.z - 1) / gridDim.z;
  const std::int64_t begin = static_cast<std::int64_t>(blockIdx.z) * split_len;
  const std::int64_t len = min(context, begin + split_len);
  float qv[kGroup][kPerLane], acc[kGroup][kPerLane], m[kGroup], l[kGroup];
#pragma unroll
  for (int i = 0; i < kGroup; ++i) {
    m[i] = -INFINITY, l[i] = 0.0f;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int d = lane + j * kWarp;
      qv[i][j] = i < n && d < D ? q[(t * heads + h0 + i) * D + d] : 0.0f;
      acc[i][j] = 0.0f;
    }
  }
  for (std::int64_t p = begin + warp; p < len; p += warps) {
    const std::int64_t slot = static_cast<std::int64_t>(table[p / block_size]) * block_size + p % block_size;
    const __nv_bfloat16* kp = k_cache + slot * row + kvh * D;
    const __nv_bfloat16* vp = v_cache + slot * row + kvh * D;
    float kf[kPerLane], vf[kPerLane];
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int d = lane + j * kWarp;
      kf[j] = d < D ? __bfloat162float(kp[d]) : 0.0f;
      vf[j] = d < D ? __bfloat162float(vp[d]) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kGroup; ++i) {
      if (i >= n) break;  // n is the same for the whole block
      float dot = 0.0f;
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) dot += qv[i][j] * kf[j];
      const float s = warp_sum(dot) * scale;
      const float m_new = fmaxf(m[i], s);
      const float correction = expf(m[i] - m_new), w = expf(s - m_new);
      l[i] = l[i] * correction + w;
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) acc[i][j] = acc[i][j] * correction + w * vf[j];
      m[i] = m_new;
    }
  }
  __shared__ float warp_m[kMaxWarps][kGroup], warp_l[kMaxWarps][kGroup];
  __shared__ float warp_acc[kMaxWarps][kGroup][kMaxDim];
#pragma unroll
  for (int i = 0; i < kGroup; ++i) {
    if (lane == 0) warp_m[warp][i] = m[i], warp_l[warp][i] = l[i];
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) warp_acc[warp][i][lane + j * kWarp] = acc[i][j];
  }
  __syncthreads();
  // Thread e merges (head e / D, dim e % D) over the warps; empty warps have l = 0.
  for (int e = threadIdx.x; e < n * D; e += blockDim.x) {
    const int i = e / D, d = e % D;
    float M = -INFINITY;
    for (int w = 0; w < warps; ++w) M = fmaxf(M, warp_m[w][i]);
    float L = 0.0f, o = 0.0f;
    for (int w = 0; w < warps; ++w)
      if (warp_l[w][i] > 0.0f) {
        const float c = expf(warp_m[w][i] - M);
        L += warp_l[w][i] * c;
        o += warp_acc[w][i][d] * c;
      }
    const std::int64_t th = t * heads + h0 + i;
    if (gridDim.z == 1) {
      out[th * D + d] = o / L;
    } else {  // partial[(t, h, split)] = {max, sum, acc[D]}; an empty split has sum 0
      float* ph = partial + (th * gridDim.z + blockIdx.z) * (D + 2);
      if (d == 0) ph[0] = M, ph[1] = L;
      ph[2 + d] = o;
    }
  }
}

// out[t, h] = the splits' partials merged: sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
__global__ void combine_splits_kernel(const float* partial, int splits, int head_dim, float* out) {
  const std::int64_t th = blockIdx.x;
  const float* p = partial + th * splits * (head_dim + 2);
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s)
    if (p[s * (head_dim + 2) + 1] > 0.0f) M = fmaxf(M, p[s * (head_dim + 2)]);
  float L = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float l = p[s * (head_dim + 2) + 1];
    if (l > 0.0f) L += l * expf(p[s * (head_dim + 2)] - M);
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float o = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* ps = p + s * (head_dim + 2);
      if (ps[1] > 0.0f) o += ps[2 + d] * expf(ps[0] - M);
    }
    out[th * head_dim + d] = o / L;
  }
}

}  // namespace

void linear(GpuContext& ctx, const bf16* x, std::int64_t rows, std::int64_t in, const bf16* w, std::int64_t out,
            const bf16* bias, float* y) {
  if (rows == 0 || out == 0) return;  // e.g. a step whose prefill chunks sample no row
  if (gemv(ctx.stream(), x, rows, in, w, out, bias, y)) return;  // decode-sized: bandwidth-bound
  // Row-major y[rows, out] is column-major [out, rows] = w[out, in] . x^T: A = w read as the
  // column-major [in, out] it is in memory, transposed.
  const float alpha = 1.0f, beta = 0.0f;
  LS_CUBLAS_CHECK(cublasGemmEx(ctx.blas(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(rows),
                               static_cast<int>(in), &alpha, w, CUDA_R_16BF, static_cast<int>(in), x, CUDA_R_16BF,
                               static_cast<int>(in), &beta, y, CUDA_R_32F, static_cast<int>(out), CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT));
  if (bias) {
    add_bias_kernel<<<blocks_for(rows * out, 256), 256, 0, ctx.stream()>>>(y, rows, out, as_bf16(bias));
    check_launch();
  }
}

void linear(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t in, const bf16* w, std::int64_t out,
            const bf16* bias, float* y) {
  if (rows == 0 || out == 0) return;
  if (gemv(ctx.stream(), x, rows, in, w, out, bias, y)) return;  // rounds x to bf16 as it reads it
  auto* xb = static_cast<bf16*>(ctx.scratch(static_cast<std::size_t>(rows * in) * sizeof(bf16)));
  to_bf16_kernel<<<blocks_for(rows * in, 256), 256, 0, ctx.stream()>>>(x, rows * in, as_bf16(xb));
  check_launch();
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
  rms_norm_kernel<<<static_cast<unsigned>(rows), norm_threads(dim), 0, ctx.stream()>>>(x, delta, dim, as_bf16(weight),
                                                                                      eps, y);
  check_launch();
}

template <typename Out>
void launch_silu_mul(GpuContext& ctx, const float* gate_up, std::int64_t rows, std::int64_t ffn, Out* out) {
  if (rows * ffn == 0) return;
  silu_mul_kernel<<<blocks_for(rows * ffn, 256), 256, 0, ctx.stream()>>>(gate_up, rows, ffn, out);
  check_launch();
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
  embedding_kernel<<<static_cast<unsigned>(tokens), 256, 0, ctx.stream()>>>(ids, as_bf16(table), vocab_begin,
                                                                            vocab_rows, hidden, out);
  check_launch();
}

void argmax(GpuContext& ctx, const float* logits, std::int64_t rows, std::int64_t vocab, int* ids,
            std::int64_t stride, float* values) {
  if (rows == 0) return;
  argmax_kernel<<<static_cast<unsigned>(rows), 1024, 0, ctx.stream()>>>(logits, vocab, stride ? stride : vocab, ids,
                                                                         values);
  check_launch();
}

void split_qkv_rope_cache(GpuContext& ctx, const float* qkv, std::int64_t tokens, std::int64_t q_heads,
                          std::int64_t kv_heads, std::int64_t head_dim, const bf16* bias, const int* positions,
                          const float* inv_freq, const std::int64_t* slots, float* q, bf16* k_cache, bf16* v_cache) {
  if (tokens == 0) return;
  split_qkv_rope_cache_kernel<<<static_cast<unsigned>(tokens), 256, 0, ctx.stream()>>>(
      qkv, q_heads, kv_heads, head_dim, bias ? as_bf16(bias) : nullptr, positions, inv_freq, slots, q, as_bf16(k_cache),
      as_bf16(v_cache));
  check_launch();
}

void silu_mul(GpuContext& ctx, const float* gate_up, std::int64_t rows, std::int64_t ffn, float* out) {
  launch_silu_mul(ctx, gate_up, rows, ffn, out);
}
void silu_mul(GpuContext& ctx, const float* gate_up, std::int64_t rows, std::int64_t ffn, bf16* out) {
  launch_silu_mul(ctx, gate_up, rows, ffn, as_bf16(out));
}

namespace {

// Query heads per block: as many as the registers allow at this head_dim.
constexpr int attention_group(int per_lane) { return per_lane <= 4 ? 8 : 4; }
template <int kPerLane>
auto attention_kernel() { return paged_attention_kernel<kPerLane, attention_group(kPerLane)>; }

}  // namespace

void paged_attention(GpuContext& ctx, const float* q, const bf16* k_cache, const bf16* v_cache, std::int64_t tokens,
                     std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                     const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks, float scale,
                     float* out, std::int64_t max_context) {
  LS_CHECK(head_dim > 0 && head_dim <= 8 * kWarp, "paged_attention: head_dim " << head_dim << " is over 256");
  LS_CHECK(kv_heads > 0 && heads % kv_heads == 0, "paged_attention: heads " << heads << " not a multiple of kv_heads "
                                                                            << kv_heads);
  if (tokens == 0) return;
  const int per_lane = static_cast<int>((head_dim + kWarp - 1) / kWarp);
  const std::int64_t group = heads / kv_heads, max_group = attention_group(per_lane);
  const std::int64_t head_blocks = kv_heads * ((group + max_group - 1) / max_group);
  // Cut each token's context in equal splits until the grid has two blocks per SM, so that batch
  // 1 still spreads over the GPU (big batches need no split): at most one split per 32 positions
  // of the longest context, at most 64.
  constexpr int kMinSplitLen = 32, kMaxSplits = 64;
  const std::int64_t context = max_context > 0 ? max_context : max_blocks * block_size;
  const std::int64_t wanted = (2 * ctx.sm_count() + tokens * head_blocks - 1) / (tokens * head_blocks);
  const int splits = static_cast<int>(
      std::clamp<std::int64_t>(std::min(wanted, (context + kMinSplitLen - 1) / kMinSplitLen), 1, kMaxSplits));
  float* partial = splits > 1 ? static_cast<float*>(ctx.scratch(static_cast<std::size_t>(tokens * heads * splits) *
                                                                (head_dim + 2) * sizeof(float)))
                              : nullptr;
  const dim3 grid(static_cast<unsigned>(tokens), static_cast<unsigned>(head_blocks), static_cast<unsigned>(splits));
  constexpr int threads = 8 * kWarp;
  auto launch = [&](auto kernel) {
    kernel<<<grid, threads, 0, ctx.stream()>>>(q, as_bf16(k_cache), as_bf16(v_cache), static_cast<int>(head_dim), heads,
                                               kv_heads, block_size, seq_of, pos, block_tables, max_blocks, scale, out,
                                               partial);
  };
  switch (per_lane) {
    case 1: launch(attention_kernel<1>()); break;
    case 2: launch(attention_kernel<2>()); break;
    case 3: launch(attention_kernel<3>()); break;
    case 4: launch(attention_kernel<4>()); break;
    case 5: launch(attention_kernel<5>()); break;
    case 6: launch(attention_kernel<6>()); break;
    case 7: launch(attention_kernel<7>()); break;
    case 8: launch(attention_kernel<8>()); break;
  }
  check_launch();
  if (splits > 1) {
    combine_splits_kernel<<<static_cast<unsigned>(tokens * heads), 128, 0, ctx.stream()>>>(
        partial, splits, static_cast<int>(head_dim), out);
    check_launch();
  }
}

}  // namespace lockstep::cuda
