// The qwen2 / llama forward pass of one rank (CPU backend): its pipeline stage's layers, its
// tensor-parallel slice of every weight, its part of the paged KV cache. TP all-reduces and
// PP activation transfers go through Collectives, so the same code runs TP1 ... TPxPP.
// Sharding (vLLM's): q/k/v and gate/up split by output rows (column-parallel), o and down by
// input columns (row-parallel, then all-reduce); embedding and lm_head split by vocabulary
// rows, the vocabulary padded to a multiple of TP; KV heads replicated when TP > KV heads.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/collectives.h"
#include "model/forward_model.h"
#include "model/layer_weights.h"
#include "model/model_config.h"
#include "model/pipeline_stages.h"
#include "model/weight_source.h"

namespace lockstep {


class DenseTransformer final : public ForwardModel {
 public:
  // tp / pp: this rank's groups; tp.rank()/size() and pp.rank()/size() place it.
  // Loading logs progress (layers, MB, GB/s) on the rank with tp 0 of each stage.
  DenseTransformer(const ModelConfig& config, const WeightSource& weights, Collectives& tp, Collectives& pp,
                   const LayerRange& layers, int num_kv_blocks, int block_size);
  ~DenseTransformer();

  std::span<const float> forward(const ForwardBatch& batch) override;

  const ModelConfig& config() const override { return config_; }
  const TensorParallelSlice& slice() const { return slice_; }
  int block_size() const override { return block_size_; }
  int num_kv_blocks() const override { return num_kv_blocks_; }

 private:
  struct Layer;
  void attention(Layer& layer, const ForwardBatch& b, const std::vector<float>& x, std::vector<float>& out);
  void mlp(Layer& layer, const std::vector<float>& x, std::int64_t tokens, std::vector<float>& out);
  void embed(const ForwardBatch& b, std::vector<float>& h);
  std::vector<float> logits(const std::vector<float>& h, const ForwardBatch& b);

  ModelConfig config_;
  TensorParallelSlice slice_;
  Collectives& tp_;
  Collectives& pp_;
  LayerRange layers_;
  int num_kv_blocks_, block_size_;
  std::vector<float> inv_freq_;
  StageEdgeWeights edge_;
  std::vector<std::unique_ptr<Layer>> layer_;
  std::vector<float> logits_;  // the last forward's, which it returns a view of
};

}  // namespace lockstep
