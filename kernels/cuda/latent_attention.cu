// CUDA kernels of MLA (see kernels/latent_attention.h);
// cpu/latent_attention.cc is the reference they are tested against. Straightforward kernels
// (a block per token, or per token and head): correct first, not yet tuned.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/fatal.h"
#include "kernels/gpu_context.h"
#include "kernels/latent_attention.h"

namespace lockstep::cuda {
namespace {

constexpr int kThreads = 256;

// Sum / max over the block (kThreads threads); every thread gets the result.
__device__ float block_reduce(float v, bool max) {
  __shared__ float partial[kThreads / kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = max ? warp_max(v) : warp_sum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < kThreads / kWarp ? partial[lane] : (max ? -INFINITY : 0.0f);
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

// A block per (token, head), a thread per latent column.
template <typename T>
__global__ void mla_absorb_q_kernel(const float* q, std::int64_t q_token_stride, std::int64_t q_head_stride,
                                    const T* kv_b, int nope, int v, int kv_lora, float* q_latent) {
  dependent_launch_enter();
  const int t = blockIdx.x, h = blockIdx.y;
  const float* qn = q + t * q_token_stride + h * q_head_stride;
  float* out = q_latent + (static_cast<std::int64_t>(t) * gridDim.y + h) * kv_lora;
  for (int k = threadIdx.x; k < kv_lora; k += blockDim.x) {
    float acc = 0.0f;
    for (int i = 0; i < nope; ++i) acc += qn[i] * to_float(kv_b[(static_cast<std::int64_t>(h) * (nope + v) + i) * kv_lora + k]);
    out[k] = acc;
  }
}

// A block per (token, head), a warp per output column.
template <typename T>
__global__ void mla_expand_v_kernel(const float* o_latent, const T* kv_b, int nope, int v, int kv_lora, float* out) {
  dependent_launch_enter();
  const int t = blockIdx.x, h = blockIdx.y, heads = gridDim.y;
  const float* o = o_latent + (static_cast<std::int64_t>(t) * heads + h) * kv_lora;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  for (int j = warp; j < v; j += warps) {
    const T* row = kv_b + (static_cast<std::int64_t>(h) * (nope + v) + nope + j) * kv_lora;
    float acc = 0.0f;
    for (int k = lane; k < kv_lora; k += kWarp) acc += to_float(row[k]) * o[k];
    acc = warp_sum(acc);
    if (lane == 0) out[(static_cast<std::int64_t>(t) * heads + h) * v + j] = acc;
  }
}

// A block per (token, head): the context in chunks of kThreads positions, an online softmax
// across chunks. A chunk's scores are a warp per position, its lanes reading the cached row in
// 16-byte pieces (a thread per position reading its own row serially loaded 2 bytes a thread
// from 32 rows at once); then each thread owns latent columns tid, tid + kThreads, ... of the
// weighted sum, whose reads of a row are consecutive across the block.
constexpr int kColumnsPerThread = kMaxLatentWidth / kThreads;
template <typename T>
__global__ void __launch_bounds__(kThreads)
latent_attention_kernel(const float* q_latent, const float* q_rope, std::int64_t rope_token_stride,
                        std::int64_t rope_head_stride, const T* cache, int kv_lora, int rope_dim, int block_size,
                        const int* seq_of, const int* pos, const int* block_tables, int max_blocks, float scale,
                        float* o_latent) {
  dependent_launch_enter();
  __shared__ __align__(16) float q[kMaxLatentWidth];
  __shared__ float weights[kThreads];
  const int t = blockIdx.x, h = blockIdx.y, heads = gridDim.y, width = kv_lora + rope_dim;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  for (int i = threadIdx.x; i < kv_lora; i += kThreads) q[i] = q_latent[(static_cast<std::int64_t>(t) * heads + h) * kv_lora + i];
  for (int i = threadIdx.x; i < rope_dim; i += kThreads) q[kv_lora + i] = q_rope[t * rope_token_stride + h * rope_head_stride + i];
  __syncthreads();
  const int* table = block_tables + static_cast<std::int64_t>(seq_of[t]) * max_blocks;
  auto row_of = [&](int p) { return cache + (static_cast<std::int64_t>(table[p / block_size]) * block_size + p % block_size) * width; };
  const bool vectors = width % 8 == 0;  // then every row starts 16-byte aligned
  const int len = pos[t] + 1;
  float running_max = -INFINITY, denom = 0.0f, acc[kColumnsPerThread];
#pragma unroll
  for (int j = 0; j < kColumnsPerThread; ++j) acc[j] = 0.0f;
  for (int start = 0; start < len; start += kThreads) {
    const int n = min(kThreads, len - start);
    for (int i = warp; i < n; i += kThreads / kWarp) {
      const T* row = row_of(start + i);
      float s = 0.0f;
      if (vectors) {
        for (int c = lane; c < width / 8; c += kWarp) {
          float f[8];
          unpack_x8<T>(reinterpret_cast<const uint4*>(row)[c], f);
#pragma unroll
          for (int k = 0; k < 8; ++k) s = fmaf(q[8 * c + k], f[k], s);
        }
      } else {
        for (int k = lane; k < width; k += kWarp) s = fmaf(q[k], to_float(row[k]), s);
      }
      s = warp_sum(s);
      if (lane == 0) weights[i] = s * scale;
    }
    __syncthreads();
    const float score = threadIdx.x < n ? weights[threadIdx.x] : -INFINITY;
    const float new_max = fmaxf(running_max, block_reduce(score, true));  // its syncs: every score read
    const float correction = running_max == -INFINITY ? 0.0f : __expf(running_max - new_max);
    const float w = threadIdx.x < n ? __expf(score - new_max) : 0.0f;
    weights[threadIdx.x] = w;
    denom = denom * correction + block_reduce(w, false);  // its syncs also publish weights[]
    running_max = new_max;
#pragma unroll
    for (int j = 0; j < kColumnsPerThread; ++j) acc[j] *= correction;
    for (int i = 0; i < n; ++i) {
      const T* row = row_of(start + i);
      const float wi = weights[i];
#pragma unroll
      for (int j = 0; j < kColumnsPerThread; ++j) {
        const int k = threadIdx.x + j * kThreads;
        if (k < kv_lora) acc[j] += wi * to_float(row[k]);
      }
    }
    __syncthreads();  // weights[] is rewritten by the next chunk
  }
  float* o = o_latent + (static_cast<std::int64_t>(t) * heads + h) * kv_lora;
#pragma unroll
  for (int j = 0; j < kColumnsPerThread; ++j) {
    const int k = threadIdx.x + j * kThreads;
    if (k < kv_lora) o[k] = acc[j] / denom;
  }
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
  launch(ctx, mla_absorb_q_kernel<device_t<W>>, dim3(static_cast<unsigned>(tokens), static_cast<unsigned>(heads)),
         kThreads, q, q_token_stride, q_head_stride, on_device(kv_b), static_cast<int>(nope), static_cast<int>(v),
         static_cast<int>(kv_lora), q_latent);
}

template <HalfFloat W>
void mla_expand_v(GpuContext& ctx, const float* o_latent, std::int64_t tokens, std::int64_t heads, const W* kv_b,
                  std::int64_t nope, std::int64_t v, std::int64_t kv_lora, float* out) {
  if (tokens == 0 || heads == 0) return;
  launch(ctx, mla_expand_v_kernel<device_t<W>>, dim3(static_cast<unsigned>(tokens), static_cast<unsigned>(heads)),
         kThreads, o_latent, on_device(kv_b), static_cast<int>(nope), static_cast<int>(v), static_cast<int>(kv_lora),
         out);
}

template <HalfFloat W>
void latent_attention(GpuContext& ctx, const float* q_latent, const float* q_rope, std::int64_t rope_token_stride,
                      std::int64_t rope_head_stride, const W* cache, std::int64_t tokens, std::int64_t heads,
                      std::int64_t kv_lora, std::int64_t rope_dim, std::int64_t block_size, const int* seq_of,
                      const int* pos, const int* block_tables, std::int64_t max_blocks, float scale, float* o_latent) {
  if (tokens == 0 || heads == 0) return;
  LS_CHECK(kv_lora + rope_dim <= kMaxLatentWidth,
           "latent_attention: kv_lora_rank + qk_rope_head_dim " << kv_lora + rope_dim << " > " << kMaxLatentWidth);
  launch(ctx, latent_attention_kernel<device_t<W>>, dim3(static_cast<unsigned>(tokens), static_cast<unsigned>(heads)),
         kThreads, q_latent, q_rope, rope_token_stride, rope_head_stride, on_device(cache), static_cast<int>(kv_lora),
         static_cast<int>(rope_dim), static_cast<int>(block_size), seq_of, pos, block_tables,
         static_cast<int>(max_blocks), scale, o_latent);
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
                                    const int*, const int*, std::int64_t, float, float*);
LOCKSTEP_MLA_CUDA_OPS(bf16)
LOCKSTEP_MLA_CUDA_OPS(fp16)
#undef LOCKSTEP_MLA_CUDA_OPS

}  // namespace lockstep::cuda
