// The qwen2 / llama forward pass of one rank (CPU backend): its pipeline stage's layers, its
// tensor-parallel slice of every weight, its part of the paged KV cache. TP all-reduces and
// PP activation transfers go through Collectives, so the same code runs TP1 ... TPxPP.
// Sharding (vLLM's): q/k/v and gate/up split by output rows (column-parallel), o and down by
// input columns (row-parallel, then all-reduce); embedding and lm_head split by vocabulary
// rows, the vocabulary padded to a multiple of TP; KV heads replicated when TP > KV heads.
#pragma once

#include <memory>

#include "comm/collectives.h"
#include "model/forward_model.h"
#include "model/layer_weights.h"
#include "model/model_config.h"
#include "model/pipeline_stages.h"
#include "model/weight_source.h"

namespace lockstep {

class DenseTransformer final : public ForwardModel {
 public:
  // tp / pp: this rank's groups; tp.rank()/size() and pp.rank()/size() place it. Runs in
  // config.dtype (BF16 or F16, else CheckpointError): the weights are kept in it; activations
  // and the KV cache are fp32.
  // Loading logs progress (layers, MB, GB/s) on the rank with tp 0 of each stage.
  DenseTransformer(const ModelConfig& config, const WeightSource& weights, Collectives& tp, Collectives& pp,
                   const LayerRange& layers, int num_kv_blocks, int block_size);
  ~DenseTransformer() override;

  std::span<const float> forward(const ForwardBatch& batch) override { return stage_->forward(batch); }

  const ModelConfig& config() const override { return stage_->config(); }
  const TensorParallelSlice& slice() const { return slice_; }
  int block_size() const override { return stage_->block_size(); }
  int num_kv_blocks() const override { return stage_->num_kv_blocks(); }

 private:
  // The stage with its weights in W (bf16 or fp16), chosen once from config.dtype.
  template <HalfFloat W>
  class StageIn;
  TensorParallelSlice slice_;
  std::unique_ptr<ForwardModel> stage_;
};

}  // namespace lockstep
