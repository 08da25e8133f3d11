// The dense-transformer ops of the CPU backend (the reference every CUDA kernel is checked
// against): fp32 activations, bf16 weights. Shapes in each comment; all tensors row-major.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"

namespace lockstep::cpu {

// y[rows, out] = x[rows, in] . w[out, in]^T (+ bias[out]).
void linear(const float* x, std::int64_t rows, std::int64_t in, const bf16* w, std::int64_t out,
            const bf16* bias, float* y);

// y[rows, dim] = x / sqrt(mean(x^2) + eps) * weight[dim]   (y may alias x).
void rms_norm(const float* x, std::int64_t rows, std::int64_t dim, const bf16* weight, float eps, float* y);

// Rotates x[tokens, heads, head_dim] in place by position (rotate-half / NeoX layout, as
// transformers' Llama and Qwen2): pairs (i, i + head_dim/2) with frequency inv_freq[i].
void apply_rope(float* x, std::int64_t tokens, std::int64_t heads, std::int64_t head_dim, const int* positions,
                const float* inv_freq);

// out[n] = silu(gate[n]) * up[n].
void silu_mul(const float* gate, const float* up, std::int64_t n, float* out);

// Paged KV cache of one layer: [num_blocks, block_size, kv_heads, head_dim] for K and for V.
// Writes token t's k/v rows to slot slots[t] (= block * block_size + offset).
void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, std::int64_t tokens,
                    std::int64_t kv_heads, std::int64_t head_dim, const std::int64_t* slots);

// Causal GQA attention over the paged cache: token t (of sequence seq_of[t], at position
// pos[t]) attends to positions [0, pos[t]] of its sequence, whose blocks are
// block_tables[seq * max_blocks + i]. q: [tokens, heads, head_dim]; out likewise.
void paged_attention(const float* q, const float* k_cache, const float* v_cache, std::int64_t tokens,
                     std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                     const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks, float scale,
                     float* out);

}  // namespace lockstep::cpu
