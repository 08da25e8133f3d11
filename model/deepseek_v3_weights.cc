// deepseek_v3_layer_slices (see deepseek_v3_weights.h).
#include "model/deepseek_v3_weights.h"

#include <string>

namespace lockstep {

DeepseekV3LayerSlices deepseek_v3_layer_slices(const ModelConfig& c, const TensorParallelSlice& s, int l) {
  const LatentAttentionConfig& a = c.mla;
  const MixtureOfExpertsConfig& m = c.moe;
  const std::int64_t H = c.hidden_size, NH = c.num_attention_heads, qk = a.qk_head_dim();
  const std::int64_t h0 = s.q_head_begin, h1 = s.q_head_begin + s.q_heads;
  const std::int64_t kvr = a.kv_lora_rank, nv = a.qk_nope_head_dim + a.v_head_dim, v = a.v_head_dim;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  auto vec = [&](const std::string& name, std::int64_t n) { return StackedSlices{{p + name, {n}, 0, n, 0, 1}}; };
  auto whole = [&](const std::string& name, std::int64_t rows, std::int64_t cols) {
    return StackedSlices{{p + name, {rows, cols}, 0, rows, 0, cols}};
  };
  auto rows = [&](const std::string& name, std::int64_t all, std::int64_t cols, std::int64_t r0, std::int64_t r1) {
    return StackedSlices{{p + name, {all, cols}, r0, r1, 0, cols}};
  };
  // An MLP's gate|up rows [f0, f1) and down columns [f0, f1) of an `inter`-wide projection.
  auto mlp = [&](const std::string& prefix, std::int64_t inter, std::int64_t f0, std::int64_t f1,
                 StackedSlices& gate_up, StackedSlices& down) {
    gate_up = {{p + prefix + "gate_proj.weight", {inter, H}, f0, f1, 0, H},
               {p + prefix + "up_proj.weight", {inter, H}, f0, f1, 0, H}};
    down = {{p + prefix + "down_proj.weight", {H, inter}, 0, H, f0, f1}};
  };
  DeepseekV3LayerSlices L;
  L.input_norm = vec("input_layernorm.weight", H);
  L.post_norm = vec("post_attention_layernorm.weight", H);
  if (a.q_lora_rank > 0) {
    L.q_a = whole("self_attn.q_a_proj.weight", a.q_lora_rank, H);
    L.q_a_norm = vec("self_attn.q_a_layernorm.weight", a.q_lora_rank);
    L.q_b = rows("self_attn.q_b_proj.weight", NH * qk, a.q_lora_rank, h0 * qk, h1 * qk);
  } else {
    L.q_b = rows("self_attn.q_proj.weight", NH * qk, H, h0 * qk, h1 * qk);
  }
  L.kv_a = whole("self_attn.kv_a_proj_with_mqa.weight", a.cache_width(), H);
  L.kv_a_norm = vec("self_attn.kv_a_layernorm.weight", kvr);
  L.kv_b = rows("self_attn.kv_b_proj.weight", NH * nv, kvr, h0 * nv, h1 * nv);
  L.o = {{p + "self_attn.o_proj.weight", {H, NH * v}, 0, H, h0 * v, h1 * v}};
  if (!m.is_moe_layer(l)) {
    mlp("mlp.", c.intermediate_size, s.ffn_begin, s.ffn_begin + s.ffn, L.gate_up, L.down);
    return L;
  }
  const std::int64_t E = m.n_routed_experts, mi = m.moe_intermediate_size;
  L.router = whole("mlp.gate.weight", E, H);
  L.correction_bias = {p + "mlp.gate.e_score_correction_bias", {E}, 0, E, 0, 1};
  L.expert_gate_up.resize(E);
  L.expert_down.resize(E);
  for (std::int64_t e = 0; e < E; ++e)
    mlp("mlp.experts." + std::to_string(e) + ".", mi, s.expert_ffn_begin, s.expert_ffn_begin + s.expert_ffn,
        L.expert_gate_up[e], L.expert_down[e]);
  if (m.n_shared_experts > 0)
    mlp("mlp.shared_experts.", m.n_shared_experts * mi, s.shared_ffn_begin, s.shared_ffn_begin + s.shared_ffn,
        L.shared_gate_up, L.shared_down);
  return L;
}

}  // namespace lockstep
