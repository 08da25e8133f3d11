// The CPU backend's stage for a config's architecture: DeepseekV3Transformer for deepseek_v3,
// DenseTransformer for qwen2, qwen3 and llama. Callers (the app, the tests) need not know which.
#pragma once

#include <cstdint>
#include <memory>

#include "comm/collectives.h"
#include "model/forward_model.h"
#include "model/layer_weights.h"
#include "model/pipeline_stages.h"
#include "model/weight_source.h"

namespace lockstep {

std::unique_ptr<ForwardModel> make_cpu_stage(const ModelConfig& config, const WeightSource& weights, Collectives& tp,
                                             Collectives& pp, const LayerRange& layers, int num_kv_blocks,
                                             int block_size);

// Bytes of KV cache one token takes in one layer on this rank: fp32 K and V of its KV heads, or
// deepseek_v3's latent and RoPE key.
std::int64_t cpu_kv_bytes_per_token_layer(const ModelConfig& config, const TensorParallelSlice& slice);

}  // namespace lockstep
