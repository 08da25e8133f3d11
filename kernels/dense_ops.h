// The dense-transformer ops: cpu:: is the CPU backend and the reference every CUDA kernel
// is checked against; cuda:: runs the same ops on device pointers, enqueued on the context's
// stream. fp32 activations, bf16 weights. Shapes in each comment; all tensors row-major.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"

namespace lockstep {
class GpuContext;
}

namespace lockstep::cpu {

// y[rows, out] = x[rows, in] . w[out, in]^T (+ bias[out]).
void linear(const float* x, std::int64_t rows, std::int64_t in, const bf16* w, std::int64_t out,
            const bf16* bias, float* y);

// y[rows, dim] = x / sqrt(mean(x^2) + eps) * weight[dim]   (y may alias x).
void rms_norm(const float* x, std::int64_t rows, std::int64_t dim, const bf16* weight, float eps, float* y);

// residual[rows, dim] += delta; y = rms_norm(residual) (the pre-norm block's add + norm).
void add_rms_norm(float* residual, const float* delta, std::int64_t rows, std::int64_t dim, const bf16* weight,
                  float eps, float* y);

// out[tokens, hidden] = table[ids[t] - vocab_begin] for ids in [vocab_begin, vocab_begin +
// vocab_rows), else 0 (a vocab-parallel embedding: another rank holds that row).
void embedding(const int* ids, std::int64_t tokens, const bf16* table, std::int64_t vocab_begin,
               std::int64_t vocab_rows, std::int64_t hidden, float* out);

// ids[r] = the index of the largest of logits[r, 0 .. vocab) (the first one on ties).
void argmax(const float* logits, std::int64_t rows, std::int64_t vocab, int* ids);

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

namespace lockstep::cuda {

// Same contracts as cpu::, every pointer on the context's GPU; enqueued on ctx.stream() (read
// results after ctx.synchronize()); zero rows or tokens are a no-op. linear rounds x to bf16
// and runs a cuBLAS bf16 GEMM with fp32 accumulation (so it differs from cpu::linear by that
// rounding); the others compute in fp32 exactly as cpu:: does, up to the order of sums.
void linear(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t in, const bf16* w, std::int64_t out,
            const bf16* bias, float* y);
void rms_norm(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t dim, const bf16* weight, float eps,
              float* y);
void add_rms_norm(GpuContext& ctx, float* residual, const float* delta, std::int64_t rows, std::int64_t dim,
                  const bf16* weight, float eps, float* y);
void embedding(GpuContext& ctx, const int* ids, std::int64_t tokens, const bf16* table, std::int64_t vocab_begin,
               std::int64_t vocab_rows, std::int64_t hidden, float* out);
void argmax(GpuContext& ctx, const float* logits, std::int64_t rows, std::int64_t vocab, int* ids);
void apply_rope(GpuContext& ctx, float* x, std::int64_t tokens, std::int64_t heads, std::int64_t head_dim,
                const int* positions, const float* inv_freq);
void silu_mul(GpuContext& ctx, const float* gate, const float* up, std::int64_t n, float* out);
void kv_cache_write(GpuContext& ctx, float* k_cache, float* v_cache, const float* k, const float* v,
                    std::int64_t tokens, std::int64_t kv_heads, std::int64_t head_dim, const std::int64_t* slots);
// head_dim <= 256. max_context: an upper bound of pos[t] + 1 over the tokens (0: the block
// tables' capacity); contexts longer than 64 are split across blocks and merged (scratch).
void paged_attention(GpuContext& ctx, const float* q, const float* k_cache, const float* v_cache, std::int64_t tokens,
                     std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                     const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks, float scale,
                     float* out, std::int64_t max_context = 0);

}  // namespace lockstep::cuda
