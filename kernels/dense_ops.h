// The dense-transformer ops: cpu:: is the CPU backend and the reference every CUDA kernel
// is checked against; cuda:: runs the same ops on device pointers, enqueued on the context's
// stream. fp32 activations; weights W in the model's 16-bit type (bf16, or fp16 for --dtype
// half), each op instantiated for both. Shapes in each comment; all tensors row-major.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/dtype.h"
#include "kernels/fp8.h"

namespace lockstep {
class GpuContext;

// What a KV cache holds: the model's 16-bit type, or fp8 (--kv-cache-dtype).
template <typename C>
concept KvCacheElement = HalfFloat<C> || Fp8<C>;
}  // namespace lockstep

namespace lockstep::cpu {

// Threads each rank's CPU ops use for big loops (OpenMP; one per core it may use by default).
void set_threads(int threads);
int threads();

// y[rows, out] = x[rows, in] . w[out, in]^T (+ bias[out]). (Nullable arguments are
// std::type_identity_t so that nullptr passes: W comes from the weights.)
template <HalfFloat W>
void linear(const float* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t out,
            std::type_identity_t<const W*> bias, float* y);

// y[rows, dim] = x / sqrt(mean(x^2) + eps) * weight[dim]   (y may alias x).
template <HalfFloat W>
void rms_norm(const float* x, std::int64_t rows, std::int64_t dim, const W* weight, float eps, float* y);

// residual[rows, dim] += delta; y = rms_norm(residual) (the pre-norm block's add + norm).
template <HalfFloat W>
void add_rms_norm(float* residual, const float* delta, std::int64_t rows, std::int64_t dim, const W* weight,
                  float eps, float* y);

// out[tokens, hidden] = table[ids[t] - vocab_begin] for ids in [vocab_begin, vocab_begin +
// vocab_rows), else 0 (a vocab-parallel embedding: another rank holds that row).
template <HalfFloat W>
void embedding(const int* ids, std::int64_t tokens, const W* table, std::int64_t vocab_begin,
               std::int64_t vocab_rows, std::int64_t hidden, float* out);

// ids[r] = the index of the largest of logits[r, 0 .. vocab) (the first one on ties; 0 when no
// value compares larger than -inf), rows `stride` apart (0: vocab); values[r] = that largest
// logit, when values is not null (to merge the argmaxes of a vocab-parallel split).
void argmax(const float* logits, std::int64_t rows, std::int64_t vocab, int* ids, std::int64_t stride = 0,
            float* values = nullptr);

// The attention inputs of a fused q|k|v projection: qkv[tokens, (q_heads + 2 kv_heads) * head_dim]
// holds each token's q heads, then k heads, then v heads. Adds bias (nullable, same layout),
// rotates q and k by position (rotate-half / NeoX layout, as transformers' Llama and Qwen2:
// pairs (i, i + head_dim/2) with frequency inv_freq[i]), writes q[tokens, q_heads, head_dim]
// and token t's k/v rows to slot slots[t] (= block * block_size + offset) of the layer's paged
// caches, each [num_blocks, block_size, kv_heads, head_dim]: fp32, its values rounded as a cache
// of `cache` would hold them (an fp8 --kv-cache-dtype; Auto: as computed).
template <HalfFloat W>
void split_qkv_rope_cache(const float* qkv, std::int64_t tokens, std::int64_t q_heads, std::int64_t kv_heads,
                          std::int64_t head_dim, std::type_identity_t<const W*> bias, const int* positions,
                          const float* inv_freq, const std::int64_t* slots, float* q, float* k_cache, float* v_cache,
                          KvCacheDtype cache = KvCacheDtype::Auto);

// out[rows, ffn] = silu(gate) * up, where gate_up[rows, 2 ffn] holds each row's gate then up
// (the fused gate|up projection).
void silu_mul(const float* gate_up, std::int64_t rows, std::int64_t ffn, float* out);

// out[rows, hidden] = down . (silu(gate . x) * (up . x)), the SwiGLU MLP: gate_up [2 ffn, hidden]
// (gate rows, then up rows), down [hidden, ffn].
template <HalfFloat W>
void swiglu_mlp(const float* x, std::int64_t rows, std::int64_t hidden, const W* gate_up, const W* down,
                std::int64_t ffn, float* out);

// Qwen3's q and k head norms, in place on a fused q|k|v projection (the layout above): every q
// head of every token becomes rms_norm(head) * q_weight, every k head rms_norm(head) * k_weight
// (head_dim values each, fp32); v is left alone.
template <HalfFloat W>
void head_rms_norm(float* qkv, std::int64_t tokens, std::int64_t q_heads, std::int64_t kv_heads, std::int64_t head_dim,
                   const W* q_weight, const W* k_weight, float eps);

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
// results after ctx.synchronize()); zero rows or tokens are a no-op. linear rounds x to W and
// multiplies with fp32 accumulation (so it differs from cpu::linear by that rounding): a
// cuBLASLt GEMM in W (kernels/cuda/lt_matmul.h), or for decode-sized steps a bandwidth-bound GEMV (kernels/cuda/gemv.h),
// which starts reading w before the kernels enqueued ahead of it have finished (a
// dependent launch): w must be weights, written by nothing on the stream; the others
// compute in fp32 exactly as cpu:: does, up to the order of sums.
template <HalfFloat W>
void linear(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t out,
            std::type_identity_t<const W*> bias, float* y);
// Out: float, or W for an activation that only feeds linears (below).
template <HalfFloat W, typename Out>
void rms_norm(GpuContext& ctx, const float* x, std::int64_t rows, std::int64_t dim, const W* weight, float eps,
              Out* y);
template <HalfFloat W, typename Out>
void add_rms_norm(GpuContext& ctx, float* residual, const float* delta, std::int64_t rows, std::int64_t dim,
                  const W* weight, float eps, Out* y);
template <HalfFloat W>
void embedding(GpuContext& ctx, const int* ids, std::int64_t tokens, const W* table, std::int64_t vocab_begin,
               std::int64_t vocab_rows, std::int64_t hidden, float* out);
void argmax(GpuContext& ctx, const float* logits, std::int64_t rows, std::int64_t vocab, int* ids,
            std::int64_t stride = 0, float* values = nullptr);
// In: float, or W with Out = W (linear_silu_mul's GEMM output); Out: float or a HalfFloat.
template <typename In, typename Out>
void silu_mul(GpuContext& ctx, const In* gate_up, std::int64_t rows, std::int64_t ffn, Out* out);
// In place on the fused q|k|v projection, as cpu::head_rms_norm; head_dim up to 256.
template <HalfFloat W>
void head_rms_norm(GpuContext& ctx, float* qkv, std::int64_t tokens, std::int64_t q_heads, std::int64_t kv_heads,
                   std::int64_t head_dim, const W* q_weight, const W* k_weight, float eps);
// The GPU's KV cache is in C: W (the model's dtype, as transformers and vLLM keep it), or an fp8
// format (--kv-cache-dtype fp8, kernels/fp8.h): k and v are rounded as they are written, and
// attention reads them as written.
template <HalfFloat W, KvCacheElement C>
void split_qkv_rope_cache(GpuContext& ctx, const float* qkv, std::int64_t tokens, std::int64_t q_heads,
                          std::int64_t kv_heads, std::int64_t head_dim, std::type_identity_t<const W*> bias,
                          const int* positions, const float* inv_freq, const std::int64_t* slots, float* q,
                          C* k_cache, C* v_cache);
// head_dim a multiple of 4 up to 256. max_context: an upper bound of pos[t] + 1 over the tokens (0: the block
// tables' capacity); when the batch alone does not fill the GPU, contexts are split across
// blocks and merged (scratch). query_run: the longest run of consecutive tokens of one sequence
// (1 at decode; a prefill chunk's length), which lets the tokens of a run share K/V reads.
// Three kernels: flash-decoding (kernels/cuda/flash_decoding.cu: decode steps whose contexts cut
// into splits of at most 64 positions (32 at head_dim 256) fit the GPU in one wave, head_dim 64,
// 128 or 256; Auto's choice for them), CUDA cores (kernels/cuda/paged_attention.cu: any head_dim;
// Auto's choice for the other small decode steps) and tensor cores
// (kernels/cuda/tensor_core_attention.cu: head_dim a multiple of 8 up to 128, GPUs from Ampere
// on; Auto's choice for prefill and for decode steps of many positions). A kernel asked for that
// cannot take the step, the head_dim or the GPU falls back to the CUDA-core one. splits: the
// blocks a decode token's context is cut over (at most 64; 0: chosen to fill the GPU), for
// benchmarks that compare them.
// An fp8 cache (head_dim a multiple of 16 up to 128, GPUs from Ampere on: fp8_kv_cache_supported)
// is read by flash-decoding where it takes the step and by the tensor-core kernel otherwise
// (CUDA cores asked for: tensor cores), its values converted exactly (to fp16 for the MMAs).
enum class AttentionKernel { Auto, CudaCores, TensorCores, FlashDecoding };
bool fp8_kv_cache_supported(const GpuContext& ctx, std::int64_t head_dim);
template <KvCacheElement C>
void paged_attention(GpuContext& ctx, const float* q, const C* k_cache, const C* v_cache, std::int64_t tokens,
                     std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                     const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks, float scale,
                     float* out, std::int64_t max_context = 0, std::int64_t query_run = 1,
                     AttentionKernel kernel = AttentionKernel::Auto, int splits = 0);

// Activations in W: linear rounds its input to W anyway, so an op whose output only feeds
// linears may write W itself (rms_norm, add_rms_norm and silu_mul with Out = W) and the linear
// take it as it is (this W* x linear): the same numbers with one conversion pass fewer.
template <HalfFloat W>
void linear(GpuContext& ctx, const W* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t out,
            std::type_identity_t<const W*> bias, float* y);
// SwiGLU's gate|up linear and silu_mul together: out[rows, ffn] = silu(x . gate^T) * (x . up^T)
// in W, for w = [gate; up] ([2 ffn, in]): a GEMM into gate_up ([rows, 2 ffn] W scratch; gate and
// up rounded to W as transformers' projections are) and silu_mul, or for decode-sized steps one
// GEMV whose warps write out from their gate and up sums, rounded to W alike (kernels/cuda/gemv.h;
// gate_up untouched). w must be weights (linear).
template <HalfFloat W>
void linear_silu_mul(GpuContext& ctx, const W* x, std::int64_t rows, std::int64_t in, const W* w, std::int64_t ffn,
                     W* gate_up, W* out);

}  // namespace lockstep::cuda
