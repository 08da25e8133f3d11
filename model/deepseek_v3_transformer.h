// The deepseek_v3 forward pass of one rank on the CPU backend (DeepSeek-V3 / R1, 671B, and the
// same architecture at other sizes): multi-head latent attention over a latent KV cache
// (kernels/latent_attention.h), dense MLPs in the first first_k_dense_replace layers, then
// mixtures of experts (kernels/moe_routing.h) with shared experts. Block-scaled fp8 checkpoints
// are dequantized to the model's dtype as they load (CheckpointWeights).
// Sharding (vLLM's TP): attention heads split across ranks (q_b_proj / q_proj and kv_b_proj by
// rows, o_proj by columns); q_a_proj and kv_a_proj_with_mqa, the router and the latent cache kept
// whole on every rank; every expert's and the dense MLPs' intermediate columns split; one
// all-reduce after attention and one after the MLP, as the dense models do.
#pragma once

#include <memory>

#include "comm/collectives.h"
#include "model/forward_model.h"
#include "model/layer_weights.h"
#include "model/model_config.h"
#include "model/pipeline_stages.h"
#include "model/weight_source.h"

namespace lockstep {

class DeepseekV3Transformer final : public ForwardModel {
 public:
  // Same contract as DenseTransformer's: config.dtype BF16 or F16 (the weights' type);
  // activations and the latent cache are fp32.
  DeepseekV3Transformer(const ModelConfig& config, const WeightSource& weights, Collectives& tp, Collectives& pp,
                        const LayerRange& layers, int num_kv_blocks, int block_size);
  ~DeepseekV3Transformer() override;

  std::span<const float> forward(const ForwardBatch& batch) override { return stage_->forward(batch); }
  const ModelConfig& config() const override { return stage_->config(); }
  int block_size() const override { return stage_->block_size(); }
  int num_kv_blocks() const override { return stage_->num_kv_blocks(); }

  // Bytes of latent cache one token takes in one layer (the CPU backend's --kv-cache-memory).
  static std::int64_t cache_bytes_per_token_layer(const ModelConfig& c) {
    return static_cast<std::int64_t>(c.mla.cache_width()) * sizeof(float);
  }

 private:
  template <HalfFloat W>
  class StageIn;
  std::unique_ptr<ForwardModel> stage_;
};

}  // namespace lockstep
