// Multi-head latent attention (MLA, DeepSeek-V2/V3) on the CPU backend, in its absorbed form:
// the KV cache keeps one latent vector c (kv_lora_rank wide) and one RoPE key (rope_dim wide) per
// token, shared by every head. kv_b_proj's rows for head h are W_UK (nope rows, which make
// k_nope = W_UK c) then W_UV (v rows, v = W_UV c); instead of expanding k and v for every cached
// position, q_nope is taken into the latent space (q_latent = W_UK^T q_nope) and the attention's
// latent output back out of it (out = W_UV o_latent). Same result as transformers' expanded
// form up to the order of sums; the cache is (kv_lora_rank + rope_dim) floats a token a layer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"

namespace lockstep {
class GpuContext;
}

namespace lockstep::cpu {

// RoPE of the rope_dim values at x + t * token_stride + h * head_stride, for tokens t < tokens and
// heads h < heads, turned by pos[t] * inv_freq[i] (rope_dim / 2 frequencies), cos and sin times
// attention_factor (yarn's). interleaved: pair i is (2i, 2i + 1) and the results are written
// de-interleaved (first halves then second halves), as transformers' apply_rotary_pos_emb_interleave
// leaves them; else pair i is (i, i + rope_dim / 2). q and k must be turned the same way.
void rope_pairs(float* x, std::int64_t tokens, std::int64_t heads, std::int64_t token_stride, std::int64_t head_stride,
                std::int64_t rope_dim, const int* pos, const float* inv_freq, float attention_factor, bool interleaved);

// q_latent[t, h, :] = W_UK(h)^T q_nope[t, h, :]: kv_b [heads * (nope + v), kv_lora] is this rank's
// rows of kv_b_proj, q_nope at q + t * q_token_stride + h * q_head_stride (nope wide), q_latent
// [tokens, heads, kv_lora].
template <HalfFloat W>
void mla_absorb_q(const float* q, std::int64_t tokens, std::int64_t heads, std::int64_t q_token_stride,
                  std::int64_t q_head_stride, const W* kv_b, std::int64_t nope, std::int64_t v, std::int64_t kv_lora,
                  float* q_latent);

// out[t, h * v + j] = (W_UV(h) o_latent[t, h, :])[j]: o_latent [tokens, heads, kv_lora], out [tokens, heads * v].
template <HalfFloat W>
void mla_expand_v(const float* o_latent, std::int64_t tokens, std::int64_t heads, const W* kv_b, std::int64_t nope,
                  std::int64_t v, std::int64_t kv_lora, float* out);

// Causal attention of every (token, head) over its sequence's cached positions [0, pos[t]]:
// score = scale * (q_latent . c_p + q_rope . k_p), softmax, o_latent = sum_p weight_p c_p.
// cache [slots, kv_lora + rope_dim]: c then k per slot; slots from the paged block tables
// (block_tables[seq_of[t] * max_blocks + p / block_size] * block_size + p % block_size).
// q_latent / o_latent [tokens, heads, kv_lora]; q_rope's rope_dim values at
// q_rope + t * rope_token_stride + h * rope_head_stride (inside q's projection, not copied out).
void latent_attention(const float* q_latent, const float* q_rope, std::int64_t rope_token_stride,
                      std::int64_t rope_head_stride, const float* cache, std::int64_t tokens, std::int64_t heads,
                      std::int64_t kv_lora, std::int64_t rope_dim, std::int64_t block_size, const int* seq_of,
                      const int* pos, const int* block_tables, std::int64_t max_blocks, float scale, float* o_latent);

}  // namespace lockstep::cpu

namespace lockstep::cuda {

// The same ops on the context's GPU (every pointer device memory, enqueued on ctx.stream()),
// with the cache in the model's type W (as transformers' bf16 cache keeps the latent), and
// what the CPU backend writes into its cache in one kernel: the latent normed (kv_a_layernorm)
// and the RoPE key turned.

// As cpu::rope_pairs; pos and inv_freq on the GPU.
void rope_pairs(GpuContext& ctx, float* x, std::int64_t tokens, std::int64_t heads, std::int64_t token_stride,
                std::int64_t head_stride, std::int64_t rope_dim, const int* pos, const float* inv_freq,
                float attention_factor, bool interleaved);

// kv [tokens, kv_lora + rope_dim] (kv_a_proj_with_mqa's output) into cache[slots[t]]: the latent
// RMS-normed with norm_weight, the RoPE key turned as rope_pairs turns it, both rounded to W.
template <HalfFloat W>
void mla_cache_write(GpuContext& ctx, const float* kv, std::int64_t tokens, std::int64_t kv_lora, std::int64_t rope_dim,
                     const W* norm_weight, float eps, const int* pos, const float* inv_freq, float attention_factor,
                     bool interleaved, const std::int64_t* slots, W* cache);

template <HalfFloat W>
void mla_absorb_q(GpuContext& ctx, const float* q, std::int64_t tokens, std::int64_t heads,
                  std::int64_t q_token_stride, std::int64_t q_head_stride, const W* kv_b, std::int64_t nope,
                  std::int64_t v, std::int64_t kv_lora, float* q_latent);

template <HalfFloat W>
void mla_expand_v(GpuContext& ctx, const float* o_latent, std::int64_t tokens, std::int64_t heads, const W* kv_b,
                  std::int64_t nope, std::int64_t v, std::int64_t kv_lora, float* out);

// kv_lora + rope_dim up to kMaxLatentWidth. A block serves a group of heads from each cached row
// it reads, over one split of the context. latent_head_group: the most heads a group may have,
// up to 16, fewer where their q rows and a tile of 32 cached rows would not fit smem_limit, the
// shared memory a block may have. max_context, an upper bound of pos[t] + 1 over the tokens (0:
// the block tables' capacity), is cut into `splits` (at most 64; 1 where kv_lora is not a
// multiple of 4), merged by the last block of a (token, head group) to finish. splits 0:
// latent_attention_grid picks the groups and splits, enough blocks to fill the GPU's SMs, none
// of their splits shorter than 32 positions; else the groups are the largest that fit.
// Graph-safe: the grid depends on max_context, not on the positions.
constexpr std::int64_t kMaxLatentWidth = 1024;
std::int64_t latent_head_group(std::int64_t heads, std::int64_t width, std::size_t smem_limit);
struct LatentAttentionGrid {
  std::int64_t group;  // heads a block
  int splits;
};
LatentAttentionGrid latent_attention_grid(const GpuContext& ctx, std::int64_t tokens, std::int64_t heads,
                                          std::int64_t kv_lora, std::int64_t rope_dim, std::int64_t max_context);
template <HalfFloat W>
void latent_attention(GpuContext& ctx, const float* q_latent, const float* q_rope, std::int64_t rope_token_stride,
                      std::int64_t rope_head_stride, const W* cache, std::int64_t tokens, std::int64_t heads,
                      std::int64_t kv_lora, std::int64_t rope_dim, std::int64_t block_size, const int* seq_of,
                      const int* pos, const int* block_tables, std::int64_t max_blocks, float scale, float* o_latent,
                      std::int64_t max_context = 0, int splits = 0);

}  // namespace lockstep::cuda
