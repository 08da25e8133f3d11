// Where each of a deepseek_v3 decoder layer's weights comes from on this rank (the slices of
// deepseek_v3_transformer.h's sharding), for the CPU stage (read into host vectors) and the
// CUDA stage (uploaded to the GPU) alike.
#pragma once

#include <vector>

#include "model/layer_weights.h"
#include "model/model_config.h"

namespace lockstep {

struct DeepseekV3LayerSlices {
  StackedSlices input_norm, post_norm;  // [hidden]
  StackedSlices q_a, q_a_norm;          // [q_lora_rank, hidden], [q_lora_rank]; none without a q low rank
  StackedSlices q_b;                    // [heads * qk_head_dim, q_lora_rank or hidden]: q_b_proj's or q_proj's rows
  StackedSlices kv_a, kv_a_norm;        // [kv_lora_rank + rope, hidden], [kv_lora_rank]
  StackedSlices kv_b;                   // [heads * (nope + v), kv_lora_rank]
  StackedSlices o;                      // [hidden, heads * v]
  StackedSlices gate_up, down;          // a dense layer's MLP: [2 ffn, hidden] (gate rows, up rows), [hidden, ffn]
  StackedSlices router;                 // [experts, hidden]
  WeightSlice correction_bias;          // [experts], read as fp32
  std::vector<StackedSlices> expert_gate_up, expert_down;  // per routed expert, as gate_up / down
  StackedSlices shared_gate_up, shared_down;               // the shared experts, as one MLP
};

DeepseekV3LayerSlices deepseek_v3_layer_slices(const ModelConfig& c, const TensorParallelSlice& s, int layer);

}  // namespace lockstep
