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
#include "model/model_config.h"
#include "model/pipeline_stages.h"
#include "model/weight_source.h"

namespace lockstep {

struct TensorParallelSlice {
  int tp_rank = 0, tp_size = 1;
  int q_head_begin = 0, q_heads = 0;   // this rank's query heads
  int kv_head_begin = 0, kv_heads = 0; // this rank's (possibly replicated) KV heads
  int ffn_begin = 0, ffn = 0;          // intermediate columns
  int vocab_padded = 0, vocab_begin = 0, vocab_rows = 0;
  // Throws CheckpointError when the model cannot be split this way.
  static TensorParallelSlice make(const ModelConfig& c, int tp_rank, int tp_size);
};

// One forward step's tokens (prefill chunks and decode tokens of several sequences mixed).
struct ForwardBatch {
  std::vector<int> token_ids;          // [T]
  std::vector<int> positions;          // [T]
  std::vector<int> seq_of_token;       // [T] index into block_tables
  std::vector<int> block_tables;       // [num_seqs * max_blocks]
  int max_blocks = 0;
  std::vector<int> logit_rows;         // token indices whose logits the last stage returns
};

class DenseTransformer {
 public:
  // tp / pp: this rank's groups; tp.rank()/size() and pp.rank()/size() place it.
  // Loading logs progress (layers, MB, GB/s) on the rank with tp 0 of each stage.
  DenseTransformer(const ModelConfig& config, const WeightSource& weights, Collectives& tp, Collectives& pp,
                   const LayerRange& layers, int num_kv_blocks, int block_size);
  ~DenseTransformer();

  // Runs this rank's stage. The last stage returns logits [logit_rows, vocab_size] on every
  // TP rank; other stages send activations on and return an empty vector.
  std::vector<float> forward(const ForwardBatch& batch);

  const ModelConfig& config() const { return config_; }
  const TensorParallelSlice& slice() const { return slice_; }
  int block_size() const { return block_size_; }
  int num_kv_blocks() const { return num_kv_blocks_; }

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
  std::vector<bf16> embed_;    // [vocab_rows, hidden] (stage 0, or the last stage when tied)
  std::vector<bf16> lm_head_;  // [vocab_rows, hidden] (last stage)
  std::vector<bf16> final_norm_;
  std::vector<std::unique_ptr<Layer>> layer_;
};

}  // namespace lockstep
