// The tensor-core attention kernel behind cuda::paged_attention (kernels/dense_ops.h), for the
// shapes and GPUs it takes: head_dim a multiple of 8 up to 128, compute capability 8.0 or newer
// (bf16 and fp16 m16n8k16 MMA) with ~100 KB of shared memory a block. Internal to kernels/cuda.
#pragma once

#include <cstdint>

#include "kernels/dense_ops.h"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {

// fp8_cache: the cache is fp8 (head_dim then a multiple of 16).
bool tensor_core_attention_supports(const GpuContext& ctx, std::int64_t head_dim, bool fp8_cache = false);

// cuda::paged_attention's contract, with query_run the longest run of consecutive tokens of one
// sequence in the batch (1: a decode step; more: prefill chunks, whose tokens then share each
// K/V read). splits: as there (prefill chunks are never split). Instantiated for bf16 and fp16
// caches and the fp8 ones.
template <KvCacheElement W>
void tensor_core_attention(GpuContext& ctx, const float* q, const W* k_cache, const W* v_cache,
                           std::int64_t tokens, std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim,
                           std::int64_t block_size, const int* seq_of, const int* pos, const int* block_tables,
                           std::int64_t max_blocks, float scale, float* out, std::int64_t max_context,
                           std::int64_t query_run, int splits);

}  // namespace lockstep::cuda
