// CUDA kernels of the dense-transformer ops (see kernels/dense_ops.h) but attention
// (paged_attention.cu); cpu/dense_ops.cc is the reference they are tested against. Every launch goes on the context's stream through launch()
// (dependent_launch.cuh) and is checked.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/gemv.h"
#include "kernels/cuda/lt_matmul.h"
#include "kernels/dense_ops.h"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {
namespace {

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

__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
template <typename T>
__device__ __forceinline__ void store4(T* p, float4 v) {
  *reinterpret_cast<uint2*>(p) = make_uint2(pack2<T>(v.x, v.y), pack2<T>(v.z, v.w));
}

// A thread rounds 4 consecutive values: a 16-byte load and an 8-byte store where x and y are
// aligned for them. A value a thread moved 1.5 TB/s (attention's output into the o projection
// at 8192 rows: 115 us on an H200, 0.4 of the GEMM it feeds).
template <typename T>
__global__ void round_kernel(const float* x, std::int64_t n, T* y) {
  dependent_launch_enter();
  const std::int64_t i = 4 * (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x);
  if (i >= n) return;
  const bool vector =
      i + 4 <= n && (reinterpret_cast<std::uintptr_t>(x) % 16 | reinterpret_cast<std::uintptr_t>(y) % 8) == 0;
  if (vector) {
    store4(y + i, *reinterpret_cast<const float4*>(x + i));
  } else {
    for (std::int64_t k = i; k < n && k < i + 4; ++k) store(y + k, x[k]);
  }
}

template <typename T>
__global__ void add_bias_kernel(float* y, std::int64_t rows, std::int64_t out, const T* bias) {
  dependent_launch_enter();
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < rows * out) y[i] += to_float(bias[i % out]);
}

// One block per row. With `delta`, residual += delta first (and is written back). A row of
// float4s that fits kNormVec per thread is read once into registers, with all its loads in
// flight together (decode's rows are a single block each: latency is all there is); other
// rows take the plain loop. The norm's weights are constant: the first kNormWeightAhead float4s'
// worth a thread uses (all of them up to 4096 dims at 512 threads, 8192 at 1024) are read before
// the dependent-launch wait, so that the scaling after the sum waits on no load.
constexpr int kNormVec = 8, kNormWeightAhead = 2;
template <typename T, typename Out>
__global__ void __launch_bounds__(1024)
    rms_norm_kernel(float* x, const float* delta, std::int64_t dim, const T* weight, float eps, Out* y) {
  dependent_launch_trigger();
  float* xr = x + blockIdx.x * dim;
  const float* dr = delta ? delta + blockIdx.x * dim : nullptr;
  Out* yr = y + blockIdx.x * dim;
  const int threads = blockDim.x, tid = threadIdx.x;
  const bool aligned = (reinterpret_cast<std::uintptr_t>(xr) | reinterpret_cast<std::uintptr_t>(dr)) % 16 == 0;
  const bool vec = aligned && dim % 4 == 0 && dim / 4 <= static_cast<std::int64_t>(kNormVec) * threads;
  float w_ahead[kNormWeightAhead][4];
#pragma unroll
  for (int k = 0; k < kNormWeightAhead; ++k) {
    const int j = tid + k * threads;
#pragma unroll
    for (int c = 0; c < 4; ++c) w_ahead[k][c] = vec && j < dim / 4 ? to_float(weight[4 * j + c]) : 0.0f;
  }
  dependent_launch_wait();
  if (vec) {
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
      const T* w = weight + 4 * j;  // 2-byte aligned only: element loads
      float wf[4];
#pragma unroll
      for (int c = 0; c < 4; ++c) wf[c] = k < kNormWeightAhead ? w_ahead[k][c] : to_float(w[c]);
      Out* o = yr + 4 * j;
      store(o, v[k].x * inv * wf[0]);
      store(o + 1, v[k].y * inv * wf[1]);
      store(o + 2, v[k].z * inv * wf[2]);
      store(o + 3, v[k].w * inv * wf[3]);
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
  for (std::int64_t i = tid; i < dim; i += threads) store(yr + i, xr[i] * inv * to_float(weight[i]));
}

template <typename T>
__global__ void embedding_kernel(const int* ids, const T* table, std::int64_t vocab_begin,
                                 std::int64_t vocab_rows, std::int64_t hidden, float* out) {
  dependent_launch_enter();
  const std::int64_t local = ids[blockIdx.x] - vocab_begin;
  float* o = out + blockIdx.x * hidden;
  const bool mine = local >= 0 && local < vocab_rows;
  for (std::int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    o[i] = mine ? to_float(table[local * hidden + i]) : 0.0f;
}

// The largest value of each row, the lowest index among equals. A row is cut in gridDim.y parts,
// a block each: at batch 1 one 1024-thread block walking a 152k row took 15.9 us of a decode step
// (benchmarks/RESULTS.md), most of it waiting on its loads one round after another. Each thread
// issues kArgmaxLoads loads before comparing (one at a time kept a 152k row at 65 us). With
// several parts, each block leaves its best in part_best / part_index and the last block of the
// row to finish (a counter per row, left at 0) picks among them.
constexpr int kArgmaxLoads = 8;
__global__ void argmax_kernel(const float* logits, std::int64_t vocab, std::int64_t stride, int* ids, float* values,
                              float* part_best, int* part_index, int* counters) {
  dependent_launch_enter();
  const float* row = logits + blockIdx.x * stride;
  const std::int64_t part_len = (vocab + gridDim.y - 1) / gridDim.y, begin = blockIdx.y * part_len;
  const std::int64_t end = min(vocab, begin + part_len);
  float best = -INFINITY;
  int best_i = 0x7fffffff;
  const std::int64_t step = blockDim.x;
  for (std::int64_t base = begin + threadIdx.x; base < end; base += kArgmaxLoads * step) {
    float v[kArgmaxLoads];
#pragma unroll
    for (int k = 0; k < kArgmaxLoads; ++k) v[k] = base + k * step < end ? row[base + k * step] : -INFINITY;
#pragma unroll
    for (int k = 0; k < kArgmaxLoads; ++k)  // ascending index: the first max is kept
      if (v[k] > best) best = v[k], best_i = static_cast<int>(base + k * step);
  }
  block_argmax(best, best_i);
  if (gridDim.y > 1) {
    __shared__ bool last;
    if (threadIdx.x == 0) {
      const std::int64_t at = blockIdx.x * gridDim.y + blockIdx.y;
      part_best[at] = best, part_index[at] = best_i;
      __threadfence();  // the part's result is visible before its count is
      last = atomicAdd(counters + blockIdx.x, 1) == static_cast<int>(gridDim.y) - 1;
      if (last) counters[blockIdx.x] = 0;
    }
    __syncthreads();
    if (!last || threadIdx.x >= kWarp) return;
    __threadfence();
    best = -INFINITY, best_i = 0x7fffffff;  // warp 0 picks among the parts
    for (int p = threadIdx.x; p < static_cast<int>(gridDim.y); p += kWarp) {
      const float v = __ldcg(part_best + blockIdx.x * gridDim.y + p);
      const int j = __ldcg(part_index + blockIdx.x * gridDim.y + p);
      if (v > best || (v == best && j < best_i)) best = v, best_i = j;
    }
    for (int o = kWarp / 2; o > 0; o /= 2) {
      const float v = __shfl_xor_sync(0xffffffffu, best, o);
      const int j = __shfl_xor_sync(0xffffffffu, best_i, o);
      if (v > best || (v == best && j < best_i)) best = v, best_i = j;
    }
  }
  if (threadIdx.x == 0) {
    ids[blockIdx.x] = best_i == 0x7fffffff ? 0 : best_i;  // an all -inf/NaN row: index 0
    if (values) values[blockIdx.x] = best;
  }
}

// Token t is blockIdx.x; its fused q|k|v row plus bias is cut into items, one per thread over
// gridDim.y blocks (a single block per token left decode latency-bound): first the (head,
// i < head_dim / 2) pairs of the q and k heads (rotated, to q or the K cache), then the V elements.
// T: the bias's type (the model's); C: the cache's (T, or an fp8 format).
template <typename T, typename C>
__global__ void split_qkv_rope_cache_kernel(const float* qkv, int q_heads, int kv_heads, int head_dim, const T* bias,
                                            const int* positions, const float* inv_freq, const std::int64_t* slots,
                                            float* q, C* k_cache, C* v_cache) {
  dependent_launch_enter();
  const std::int64_t t = blockIdx.x;
  const int half = head_dim / 2, rotated = q_heads + kv_heads, pairs = rotated * half, kv_row = kv_heads * head_dim;
  const int g = blockIdx.y * blockDim.x + threadIdx.x;
  const float* x = qkv + t * (rotated + kv_heads) * head_dim;
  if (g < pairs) {
    const int h = g / half, i = g - h * half, e = h * head_dim + i;
    float a = x[e], b = x[e + half];
    if (bias) a += to_float(bias[e]), b += to_float(bias[e + half]);
    float s, c;
    sincosf(static_cast<float>(positions[t]) * inv_freq[i], &s, &c);
    const float lo = a * c - b * s, hi = b * c + a * s;
    if (h < q_heads) {
      float* qt = q + t * q_heads * head_dim;
      qt[e] = lo, qt[e + half] = hi;
    } else {
      C* k_out = k_cache + slots[t] * kv_row + (e - q_heads * head_dim);
      store(k_out, lo), store(k_out + half, hi);
    }
  } else if (g < pairs + kv_row) {
    const int e = g - pairs, src = rotated * head_dim + e;
    store(v_cache + slots[t] * kv_row + e, x[src] + (bias ? to_float(bias[src]) : 0.0f));
  }
}

// A thread takes 8 columns of a row in 16-byte pieces (two of fp32, one of bf16 / fp16) of gate
// and of up, its loads in flight together, blockIdx.y the rows (striding past the grid's 65535).
// bf16 input at 8192 rows of the 7B model's 18944 (H200): 0.78 of copy; 0.71 at 4 columns a
// thread (~0.5 inside the 1k/1k run), 0.55 at 16. No per-element 64-bit division: with one, the kernel
// ran at 0.4 of copy (0.93 ms at 8192 rows). gate_up is fp32 or, from linear_silu_mul's GEMM, W
// (half the bytes to write and read).
constexpr int kSiluCols = 8;
template <typename In>
constexpr int kSiluPieceCols = 16 / static_cast<int>(sizeof(In));
// A 16-byte piece as floats: 4 of fp32, 8 of bf16 / fp16.
__device__ __forceinline__ void load_piece(const float* p, float* v) {
  const float4 a = *reinterpret_cast<const float4*>(p);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
}
template <typename T>
__device__ __forceinline__ void load_piece(const T* p, float* v) {
  const uint4 a = *reinterpret_cast<const uint4*>(p);
  const T* h = reinterpret_cast<const T*>(&a);
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = to_float(h[i]);
}
template <typename In, typename Out>
__global__ void silu_mul_kernel(const In* gate_up, std::int64_t rows, std::int64_t ffn, Out* out) {
  dependent_launch_enter();
  constexpr int kPiece = kSiluPieceCols<In>, kPieces = kSiluCols / kPiece;
  const std::int64_t j = kSiluCols * (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x);
  if (j >= ffn) return;
  // Pieces when every row starts aligned for them (ffn a multiple of a piece, 16-byte aligned
  // buffers); a piece is then wholly in the row or past its end.
  const bool vector = ffn % kPiece == 0 && reinterpret_cast<std::uintptr_t>(gate_up) % 16 == 0 &&
                      reinterpret_cast<std::uintptr_t>(out) % 16 == 0;
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const In* gate = gate_up + r * 2 * ffn + j;
    const In* up = gate + ffn;
    Out* o = out + r * ffn + j;
    if (vector) {
      float g[kPieces][kPiece], u[kPieces][kPiece];
#pragma unroll
      for (int q = 0; q < kPieces; ++q)
        if (j + kPiece * q < ffn) load_piece(gate + kPiece * q, g[q]), load_piece(up + kPiece * q, u[q]);
#pragma unroll
      for (int q = 0; q < kPieces; ++q)
        if (j + kPiece * q < ffn)
#pragma unroll
          for (int c = 0; c < kPiece; c += 4)
            store4(o + kPiece * q + c, make_float4(silu_times(g[q][c], u[q][c]), silu_times(g[q][c + 1], u[q][c + 1]),
                                                   silu_times(g[q][c + 2], u[q][c + 2]),
                                                   silu_times(g[q][c + 3], u[q][c + 3])));
    } else {
      for (std::int64_t k = 0; k < kSiluCols && j + k < ffn; ++k)
        store(o + k, silu_times(to_float(gate[k]), to_float(up[k])));
    }
  }
}

// Qwen3's head norms (cpu::head_rms_norm): a warp per (token, q or k head), in place; each lane
// keeps its up to 8 of the head's values (head_dim <= 256) between the sum and the write.
constexpr int kHeadNormWarps = 8, kHeadNormPerLane = 8;
template <typename T>
__global__ void __launch_bounds__(kWarp * kHeadNormWarps)
    head_rms_norm_kernel(float* qkv, std::int64_t tokens, int q_heads, int kv_heads, int head_dim, const T* q_weight,
                         const T* k_weight, float eps) {
  dependent_launch_enter();
  const int heads = q_heads + kv_heads, lane = threadIdx.x % kWarp;
  const std::int64_t item = static_cast<std::int64_t>(blockIdx.x) * kHeadNormWarps + threadIdx.x / kWarp;
  if (item >= tokens * heads) return;  // the whole warp
  const std::int64_t t = item / heads;
  const int h = static_cast<int>(item % heads);
  float* x = qkv + t * (q_heads + 2 * kv_heads) * head_dim + static_cast<std::int64_t>(h) * head_dim;
  const T* w = h < q_heads ? q_weight : k_weight;
  float v[kHeadNormPerLane];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kHeadNormPerLane; ++j) {
    const int i = lane + j * kWarp;
    v[j] = i < head_dim ? x[i] : 0.0f;
    ss += v[j] * v[j];
  }
  const float inv = rsqrtf(warp_sum(ss) / static_cast<float>(head_dim) + eps);
#pragma unroll
  for (int j = 0; j < kHeadNormPerLane; ++j) {
    const int i = lane + j * kWarp;
    if (i < head_dim) x[i] = v[j] * inv * to_float(w[i]);
  }
}

template <HalfFloat W> constexpr cudaDataType_t kBlasType = std::is_same_v<W, bf16> ? CUDA_R_16BF : CUDA_R_16F;

}  // namespace

template <HalfFloat W>
void linear(GpuContext& ctx, const W* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t out,
            std::type_identity_t<const W*> bias, float* y) {
  if (rows == 0 || out == 0) return;  // e.g. a step whose prefill chunks sample no row
  if (gemv(ctx, x, rows, in, w, out, bias, y)) return;  // decode-sized: bandwidth-bound
  ctx.gemm().run(kBlasType<W>, x, rows, in, w, out, y);
  if (bias) {
    launch(ctx, add_bias_kernel<device_t<W>>, blocks_for(rows * out, 256), 256, y, rows, out, on_device(bias));
  }
}

template <HalfFloat W>
void linear(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t out,
            std::type_identity_t<const W*> bias, float* y) {
  if (rows == 0 || out == 0) return;
  if (gemv(ctx, x, rows, in, w, out, bias, y)) return;  // rounds x to W as it reads it
  auto* xw = static_cast<W*>(ctx.scratch(static_cast<std::size_t>(rows * in) * sizeof(W)));
  launch(ctx, round_kernel<device_t<W>>, blocks_for((rows * in + 3) / 4, 256), 256, x, rows * in, on_device(xw));
  linear(ctx, static_cast<const W*>(xw), rows, in, w, out, bias, y);
}

namespace {

int norm_threads(std::int64_t dim) { return dim >= 4096 ? 1024 : dim >= 1024 ? 512 : 128; }

}  // namespace

// x is only read when delta is null.
template <HalfFloat W, typename Out>
void rms_norm(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t dim, const W* weight, float eps,
              Out* y) {
  add_rms_norm(ctx, const_cast<float*>(x), nullptr, rows, dim, weight, eps, y);
}

template <HalfFloat W, typename Out>
void add_rms_norm(GpuContext& ctx, float* residual, const float* delta, std::int64_t rows, std::int64_t dim,
                  const W* weight, float eps, Out* y) {
  if (rows == 0) return;
  launch(ctx, rms_norm_kernel<device_t<W>, device_t<Out>>, static_cast<unsigned>(rows), norm_threads(dim), residual,
         delta, dim, on_device(weight), eps, on_device(y));
}

template <HalfFloat W>
void embedding(GpuContext& ctx, const int* ids, std::int64_t tokens, const W* table, std::int64_t vocab_begin,
               std::int64_t vocab_rows, std::int64_t hidden, float* out) {
  if (tokens == 0) return;
  launch(ctx, embedding_kernel<device_t<W>>, static_cast<unsigned>(tokens), 256, ids, on_device(table), vocab_begin,
         vocab_rows, hidden, out);
}

void argmax(GpuContext& ctx, const float* logits, std::int64_t rows, std::int64_t vocab, int* ids,
            std::int64_t stride, float* values) {
  if (rows == 0) return;
  // Parts of at least 4096 logits (one round of loads a thread) while rows x parts fit the SMs.
  constexpr std::int64_t kMinPart = 4096;
  const int parts = static_cast<int>(std::clamp<std::int64_t>(
      std::min<std::int64_t>(ctx.sm_count() / rows, vocab / kMinPart), 1, 64));
  float* part_best = nullptr;
  int *part_index = nullptr, *counters = nullptr;
  if (parts > 1) {
    part_best = static_cast<float*>(ctx.scratch(static_cast<std::size_t>(rows * parts) * (sizeof(float) + sizeof(int))));
    part_index = reinterpret_cast<int*>(part_best + rows * parts);
    counters = ctx.zeroed_counters(static_cast<std::size_t>(rows));
  }
  launch(ctx, argmax_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(parts)), 1024, logits, vocab,
         stride ? stride : vocab, ids, values, part_best, part_index, counters);
}

template <HalfFloat W, KvCacheElement C>
void split_qkv_rope_cache(GpuContext& ctx, const float* qkv, std::int64_t tokens, std::int64_t q_heads,
                          std::int64_t kv_heads, std::int64_t head_dim, std::type_identity_t<const W*> bias,
                          const int* positions, const float* inv_freq, const std::int64_t* slots, float* q,
                          C* k_cache, C* v_cache) {
  if (tokens == 0) return;
  const std::int64_t items = (q_heads + kv_heads) * (head_dim / 2) + kv_heads * head_dim;
  launch(ctx, split_qkv_rope_cache_kernel<device_t<W>, device_t<C>>,
         dim3(static_cast<unsigned>(tokens), blocks_for(items, 256)), 256, qkv, static_cast<int>(q_heads),
         static_cast<int>(kv_heads), static_cast<int>(head_dim), on_device(bias),
         positions, inv_freq, slots, q, on_device(k_cache), on_device(v_cache));
}

template <HalfFloat W>
void head_rms_norm(GpuContext& ctx, float* qkv, std::int64_t tokens, std::int64_t q_heads, std::int64_t kv_heads,
                   std::int64_t head_dim, const W* q_weight, const W* k_weight, float eps) {
  LS_CHECK(head_dim > 0 && head_dim <= kWarp * kHeadNormPerLane,
           "head_rms_norm: head_dim " << head_dim << " is not in 1.." << kWarp * kHeadNormPerLane);
  if (tokens == 0) return;
  const std::int64_t items = tokens * (q_heads + kv_heads);
  launch(ctx, head_rms_norm_kernel<device_t<W>>, static_cast<unsigned>((items + kHeadNormWarps - 1) / kHeadNormWarps),
         kWarp * kHeadNormWarps, qkv, tokens, static_cast<int>(q_heads), static_cast<int>(kv_heads),
         static_cast<int>(head_dim), on_device(q_weight), on_device(k_weight), eps);
}

template <typename In, typename Out>
void silu_mul(GpuContext& ctx, const In* gate_up, std::int64_t rows, std::int64_t ffn, Out* out) {
  if (rows * ffn == 0) return;
  const dim3 grid(blocks_for((ffn + kSiluCols - 1) / kSiluCols, 256),
                  static_cast<unsigned>(std::min<std::int64_t>(rows, 65535)));
  launch(ctx, silu_mul_kernel<device_t<In>, device_t<Out>>, grid, 256, on_device(gate_up), rows, ffn,
         on_device(out));
}

// The GEMM writes gate|up in W, as transformers' gate_proj and up_proj do: half the bytes of
// fp32 for it to write and silu_mul to read (at 16384 prefill tokens of the 7B model, 2.5 GB a
// layer in fp32).
template <HalfFloat W>
void linear_silu_mul(GpuContext& ctx, const W* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t ffn,
                     W* gate_up, W* out) {
  if (rows == 0 || ffn == 0) return;
  if (gemv_silu_mul(ctx, x, rows, in, w, ffn, out)) return;  // decode-sized: one kernel
  ctx.gemm().run(kBlasType<W>, x, rows, in, w, 2 * ffn, gate_up, kBlasType<W>);
  silu_mul(ctx, static_cast<const W*>(gate_up), rows, ffn, out);
}

#define LOCKSTEP_CUDA_OPS(W)                                                                                          \
  template void linear<W>(GpuContext&, const W*, std::int64_t, std::int64_t, const W*, std::int64_t, const W*,        \
                          float*);                                                                                    \
  template void linear<W>(GpuContext&, const float*, std::int64_t, std::int64_t, const W*, std::int64_t, const W*,    \
                          float*);                                                                                    \
  template void rms_norm<W, float>(GpuContext&, const float*, std::int64_t, std::int64_t, const W*, float, float*);   \
  template void rms_norm<W, W>(GpuContext&, const float*, std::int64_t, std::int64_t, const W*, float, W*);           \
  template void add_rms_norm<W, float>(GpuContext&, float*, const float*, std::int64_t, std::int64_t, const W*,      \
                                       float, float*);                                                                \
  template void add_rms_norm<W, W>(GpuContext&, float*, const float*, std::int64_t, std::int64_t, const W*, float,   \
                                   W*);                                                                               \
  template void embedding<W>(GpuContext&, const int*, std::int64_t, const W*, std::int64_t, std::int64_t,            \
                             std::int64_t, float*);                                                                   \
  template void split_qkv_rope_cache<W, W>(GpuContext&, const float*, std::int64_t, std::int64_t, std::int64_t,      \
                                           std::int64_t, const W*, const int*, const float*, const std::int64_t*,    \
                                           float*, W*, W*);                                                           \
  template void split_qkv_rope_cache<W, fp8_e4m3>(GpuContext&, const float*, std::int64_t, std::int64_t,             \
                                                  std::int64_t, std::int64_t, const W*, const int*, const float*,    \
                                                  const std::int64_t*, float*, fp8_e4m3*, fp8_e4m3*);                \
  template void split_qkv_rope_cache<W, fp8_e5m2>(GpuContext&, const float*, std::int64_t, std::int64_t,             \
                                                  std::int64_t, std::int64_t, const W*, const int*, const float*,    \
                                                  const std::int64_t*, float*, fp8_e5m2*, fp8_e5m2*);                \
  template void silu_mul<float, W>(GpuContext&, const float*, std::int64_t, std::int64_t, W*);                    \
  template void silu_mul<W, W>(GpuContext&, const W*, std::int64_t, std::int64_t, W*);                            \
  template void head_rms_norm<W>(GpuContext&, float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,       \
                                 const W*, const W*, float);                                                      \
  template void linear_silu_mul<W>(GpuContext&, const W*, std::int64_t, std::int64_t, const W*, std::int64_t, W*,    \
                                   W*);
LOCKSTEP_CUDA_OPS(bf16)
LOCKSTEP_CUDA_OPS(fp16)
#undef LOCKSTEP_CUDA_OPS
template void silu_mul<float, float>(GpuContext&, const float*, std::int64_t, std::int64_t, float*);

}  // namespace lockstep::cuda
