// A checkpoint's config.json as lockstep needs it, read from either spelling: hub repos carry
// rope_theta + rope_scaling and torch_dtype; transformers 5 writes rope_parameters and dtype.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/fp8.h"

namespace lockstep {

// A user-facing problem with a checkpoint (missing file, bad config, missing tensor): the
// message says what and where; callers turn it into an error line or an HTTP error.
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct RopeScaling {
  std::string type = "default";  // default | llama3 | yarn
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int original_max_position_embeddings = 8192;
  // yarn (transformers' names and defaults): the ramp's rotation bounds, the attention factor
  // (0: derived from factor, mscale and mscale_all_dim), and whether the ramp's ends are rounded.
  double beta_fast = 32.0, beta_slow = 1.0;
  double attention_factor = 0.0, mscale = 0.0, mscale_all_dim = 0.0;
  bool truncate = true;
};

// deepseek_v3's multi-head latent attention (MLA): q through an optional low-rank q_a/q_b pair; k
// and v from a kv_lora_rank-wide latent (kv_a_proj_with_mqa, then kv_b_proj per head) plus one
// qk_rope_head_dim-wide RoPE key shared by the heads. q and k heads are nope + rope wide, v heads
// v_head_dim. The KV cache holds the latent and the RoPE key per token, for all heads at once.
struct LatentAttentionConfig {
  int q_lora_rank = 0;  // 0: q_proj straight from the hidden state (config null)
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  bool rope_interleave = true;  // RoPE pairs (2i, 2i + 1), as the hub's weights are laid out
  int qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  int cache_width() const { return kv_lora_rank + qk_rope_head_dim; }  // floats a token keeps per layer
};

// deepseek_v3's mixture of experts (from layer first_k_dense_replace on): sigmoid scores of
// n_routed_experts, plus e_score_correction_bias to choose (not to weigh); experts grouped in
// n_group, the topk_group groups with the best two-expert sums kept, num_experts_per_tok experts
// chosen among them; their weights normalized (norm_topk_prob) and times routed_scaling_factor;
// n_shared_experts always-on experts of the same width added.
struct MixtureOfExpertsConfig {
  int n_routed_experts = 0, n_shared_experts = 0, num_experts_per_tok = 0;
  int n_group = 1, topk_group = 1;
  int moe_intermediate_size = 0;
  int first_k_dense_replace = 0;
  double routed_scaling_factor = 1.0;
  bool norm_topk_prob = true;
  bool is_moe_layer(int layer) const { return n_routed_experts > 0 && layer >= first_k_dense_replace; }
};

struct ModelConfig {
  std::string architecture;  // "qwen2" | "llama" | "qwen3" | "deepseek_v3"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (always on for qwen2)
  bool qk_norm = false;         // an RMSNorm of every q and k head before RoPE (qwen3)
  std::string torch_dtype = "bfloat16";  // as the checkpoint states it
  // What the model runs in (weights, the GPU's KV cache, linears' inputs): BF16 or F16. Not read
  // from config.json: the app resolves it from --dtype and torch_dtype (resolve_model_dtype).
  DType dtype = DType::BF16;
  // The KV cache's type (--kv-cache-dtype; not in config.json either): Auto is dtype on a GPU and
  // fp32 on the CPU backend; an fp8 format rounds k and v to it as they are written (kernels/fp8.h).
  KvCacheDtype kv_cache_dtype = KvCacheDtype::Auto;
  std::vector<int> eos_token_ids;
  std::optional<int> bos_token_id;
  // deepseek_v3 only (head_dim is then qk_rope_head_dim, the width RoPE turns, as transformers
  // sets it; intermediate_size is the dense layers' MLP).
  LatentAttentionConfig mla;
  MixtureOfExpertsConfig moe;
  // quantization_config of DeepSeek's fp8 checkpoints (quant_method fp8, e4m3): the blocks of
  // weight_block_size that each weight_scale_inv value covers. Read for every weight stored as fp8.
  int fp8_block_rows = 128, fp8_block_cols = 128;
  bool fp8_weights = false;  // quantization_config says block fp8 (then some weights are stored so)
  bool is_deepseek_v3() const { return architecture == "deepseek_v3"; }

  // Throws CheckpointError naming the file and the field.
  static ModelConfig from_json_text(const std::string& text, const std::string& where);
  static ModelConfig from_file(const std::string& path);  // a config.json
  static ModelConfig from_dir(const std::string& dir);    // dir/config.json
};

// Inverse frequencies for RoPE of one head (head_dim / 2 values), with llama3 or yarn scaling
// applied, as transformers' rope initializers compute them.
std::vector<float> rope_inverse_frequencies(const ModelConfig& c);
// What transformers multiplies cos and sin by (yarn's attention factor; 1 otherwise).
double rope_attention_factor(const ModelConfig& c);
// Attention's softmax scale: 1 / sqrt(head_dim), times the square of the RoPE attention factor
// (q and k both carry it in transformers; the product is what reaches the scores). deepseek_v3:
// 1 / sqrt(qk_head_dim), times yarn's mscale(factor, mscale_all_dim) squared when the config
// has mscale_all_dim (its RoPE factor multiplies only the RoPE part of q and k: rope_attention_factor).
float attention_softmax_scale(const ModelConfig& c);

}  // namespace lockstep
