// Flash-decoding behind cuda::paged_attention (kernels/dense_ops.h) for small decode steps: each
// token's context cut into splits short enough that a block stages a whole split's K and V rows
// in shared memory at once (64 positions at head_dim 64 or 128, 32 at 256), all copies issued
// before the dependent-launch wait. Internal to kernels/cuda.
#pragma once

#include <cstdint>

#include "kernels/dense_ops.h"
#include "kernels/gpu_context.h"

namespace lockstep::cuda {

// The splits flash_decoding would cut a decode step into (tokens, one query token each, of at
// most max_context positions, heads / kv_heads query heads per KV head), or 0 where it does not
// take the step: head_dim other than 64, 128 or 256, more splits than kMaxSplits, or more blocks
// than the GPU holds at once (a second wave would cost a whole block's latency again; the other
// kernels walk longer splits then). splits_wanted > 0: that many, if they are short enough.
int flash_decoding_splits(const GpuContext& ctx, std::int64_t tokens, std::int64_t heads, std::int64_t kv_heads,
                          std::int64_t head_dim, std::int64_t max_context, int splits_wanted);

// cuda::paged_attention's contract for a decode step (one query token per sequence), cut in
// `splits` (from flash_decoding_splits). Instantiated for bf16, fp16 and the fp8 caches.
template <KvCacheElement W>
void flash_decoding(GpuContext& ctx, const float* q, const W* k_cache, const W* v_cache, std::int64_t tokens,
                    std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim, std::int64_t block_size,
                    const int* seq_of, const int* pos, const int* block_tables, std::int64_t max_blocks, float scale,
                    float* out, int splits);

}  // namespace lockstep::cuda
