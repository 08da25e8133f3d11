// ModelConfig parsing and RoPE frequencies (see model_config.h).
#include "model/model_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lockstep {
namespace {

using nlohmann::json;

template <typename T>
T need(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) throw CheckpointError(where + ": missing \"" + key + "\"");
  try {
    return j[key].get<T>();
  } catch (const json::exception&) {
    throw CheckpointError(where + ": \"" + key + "\" has the wrong type (" + j[key].dump() + ")");
  }
}

template <typename T>
T get_or(const json& j, const char* key, T fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  return j[key].get<T>();
}

// deepseek_v3's MLA, MoE and fp8 keys, checked as far as the forward pass relies on them.
void read_deepseek_v3(const json& j, ModelConfig& c, const std::string& where) {
  LatentAttentionConfig& a = c.mla;
  a.q_lora_rank = get_or<int>(j, "q_lora_rank", 0);
  a.kv_lora_rank = need<int>(j, "kv_lora_rank", where);
  a.qk_nope_head_dim = need<int>(j, "qk_nope_head_dim", where);
  a.qk_rope_head_dim = need<int>(j, "qk_rope_head_dim", where);
  a.v_head_dim = need<int>(j, "v_head_dim", where);
  a.rope_interleave = get_or<bool>(j, "rope_interleave", true);
  if (a.q_lora_rank < 0 || a.kv_lora_rank <= 0 || a.qk_nope_head_dim <= 0 || a.qk_rope_head_dim <= 0 ||
      a.qk_rope_head_dim % 2 || a.v_head_dim <= 0)
    throw CheckpointError(where + ": the MLA sizes (q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim "
                          "(even), v_head_dim) must be positive");
  c.head_dim = a.qk_rope_head_dim;  // what RoPE turns (transformers' DeepseekV3Config does the same)
  if (get_or<bool>(j, "attention_bias", false))
    throw CheckpointError(where + ": deepseek_v3 with attention_bias is not supported (no published checkpoint has it)");
  MixtureOfExpertsConfig& m = c.moe;
  m.n_routed_experts = get_or<int>(j, "n_routed_experts", 0);
  if (m.n_routed_experts > 0) {
    m.n_shared_experts = get_or<int>(j, "n_shared_experts", 0);
    m.num_experts_per_tok = need<int>(j, "num_experts_per_tok", where);
    m.n_group = get_or<int>(j, "n_group", 1);
    m.topk_group = get_or<int>(j, "topk_group", 1);
    m.moe_intermediate_size = need<int>(j, "moe_intermediate_size", where);
    m.first_k_dense_replace = get_or<int>(j, "first_k_dense_replace", 0);
    m.routed_scaling_factor = get_or<double>(j, "routed_scaling_factor", 1.0);
    m.norm_topk_prob = get_or<bool>(j, "norm_topk_prob", true);
    const int per_group = m.n_group > 0 ? m.n_routed_experts / m.n_group : 0;
    if (m.n_group <= 0 || m.n_routed_experts % m.n_group || per_group < 2 || m.topk_group < 1 ||
        m.topk_group > m.n_group || m.num_experts_per_tok < 1 || m.num_experts_per_tok > m.topk_group * per_group ||
        m.moe_intermediate_size <= 0 || m.n_shared_experts < 0 || m.first_k_dense_replace < 0)
      throw CheckpointError(where + ": the MoE sizes do not fit (n_routed_experts a multiple of n_group with >= 2 "
                            "experts a group, 1 <= topk_group <= n_group, num_experts_per_tok <= the experts of "
                            "topk_group groups, moe_intermediate_size > 0)");
    // DeepSeek-V3/R1's routing (transformers' DeepseekV3TopkRouter); V2's softmax scores and
    // greedy choice would give other experts.
    const std::string scoring = get_or<std::string>(j, "scoring_func", "sigmoid");
    const std::string method = get_or<std::string>(j, "topk_method", "noaux_tc");
    if (scoring != "sigmoid" || method != "noaux_tc")
      throw CheckpointError(where + ": MoE routing scoring_func \"" + scoring + "\" / topk_method \"" + method +
                            "\" is not supported (supported: sigmoid with noaux_tc, DeepSeek-V3's)");
    if (get_or<int>(j, "moe_layer_freq", 1) != 1)
      throw CheckpointError(where + ": moe_layer_freq other than 1 is not supported");
  }
}

// quantization_config: DeepSeek's block-scaled fp8 weights are read (dequantized as they load);
// any other method ends here instead of reading packed integers as weights.
void read_quantization(const json& j, ModelConfig& c, const std::string& where) {
  if (!j.contains("quantization_config") || j["quantization_config"].is_null()) return;
  const json& q = j["quantization_config"];
  const std::string method = q.is_object() ? get_or<std::string>(q, "quant_method", "") : "";
  const std::string fmt = q.is_object() ? get_or<std::string>(q, "fmt", "e4m3") : "";
  if (method != "fp8" || fmt != "e4m3" || !q.contains("weight_block_size"))
    throw CheckpointError(where + ": quantization_config (quant_method \"" + method +
                          "\") is not supported (supported: fp8 e4m3 with weight_block_size, DeepSeek's)");
  const std::vector<int> block = need<std::vector<int>>(q, "weight_block_size", where);
  if (block.size() != 2 || block[0] <= 0 || block[1] <= 0)
    throw CheckpointError(where + ": quantization_config weight_block_size must be two positive sizes");
  c.fp8_block_rows = block[0];
  c.fp8_block_cols = block[1];
  c.fp8_weights = true;
}

void read_rope(const json& j, ModelConfig& c, const std::string& where) {
  // transformers 5: rope_parameters {rope_type, rope_theta, factor, ...}; hub: rope_theta + rope_scaling.
  const json* scaling = nullptr;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    scaling = &j["rope_parameters"];
    c.rope_theta = get_or<double>(*scaling, "rope_theta", get_or<double>(j, "rope_theta", 10000.0));
  } else {
    c.rope_theta = get_or<double>(j, "rope_theta", 10000.0);
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) scaling = &j["rope_scaling"];
  }
  if (!scaling) return;
  std::string type = get_or<std::string>(*scaling, "rope_type", get_or<std::string>(*scaling, "type", "default"));
  if (type == "default") return;
  if (type != "llama3" && type != "yarn")
    throw CheckpointError(where + ": rope type \"" + type + "\" is not supported for " + c.architecture +
                          " (supported: default, llama3, yarn)");
  RopeScaling& s = c.rope_scaling;
  s.type = type;
  if (type == "llama3") {
    s.factor = need<double>(*scaling, "factor", where);
    s.low_freq_factor = get_or<double>(*scaling, "low_freq_factor", 1.0);
    s.high_freq_factor = get_or<double>(*scaling, "high_freq_factor", 4.0);
    s.original_max_position_embeddings = get_or<int>(*scaling, "original_max_position_embeddings", 8192);
    return;
  }
  // yarn, read as transformers' _compute_yarn_parameters reads it. Its attention factor is the
  // "attention_factor" key; vLLM's "attn_factor" (a multiplier of the derived one, which
  // DeepSeek-R1-0528-Qwen3-8B's config carries) is not a transformers key and is ignored as
  // transformers ignores it.
  s.original_max_position_embeddings =
      get_or<int>(*scaling, "original_max_position_embeddings", get_or<int>(j, "max_position_embeddings", 4096));
  s.factor = get_or<double>(*scaling, "factor",
                            static_cast<double>(get_or<int>(j, "max_position_embeddings", 4096)) /
                                s.original_max_position_embeddings);
  if (s.factor <= 0) throw CheckpointError(where + ": yarn factor must be positive");
  s.attention_factor = get_or<double>(*scaling, "attention_factor", 0.0);
  s.mscale = get_or<double>(*scaling, "mscale", 0.0);
  s.mscale_all_dim = get_or<double>(*scaling, "mscale_all_dim", 0.0);
  // `or 32` / `or 1` in transformers: a 0 or null takes the default too.
  s.beta_fast = get_or<double>(*scaling, "beta_fast", 0.0);
  s.beta_slow = get_or<double>(*scaling, "beta_slow", 0.0);
  if (s.beta_fast == 0) s.beta_fast = 32.0;
  if (s.beta_slow == 0) s.beta_slow = 1.0;
  s.truncate = get_or<bool>(*scaling, "truncate", true);
}

}  // namespace

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw CheckpointError(where + ": not valid JSON (" + e.what() + ")");
  }
  ModelConfig c;
  c.architecture = need<std::string>(j, "model_type", where);
  if (c.architecture != "qwen2" && c.architecture != "llama" && c.architecture != "qwen3" &&
      c.architecture != "deepseek_v3")
    throw CheckpointError(where + ": model_type \"" + c.architecture +
                          "\" is not supported by this build (supported: qwen2, qwen3, llama, deepseek_v3)");
  c.hidden_size = need<int>(j, "hidden_size", where);
  c.intermediate_size = need<int>(j, "intermediate_size", where);
  c.num_hidden_layers = need<int>(j, "num_hidden_layers", where);
  c.num_attention_heads = need<int>(j, "num_attention_heads", where);
  c.num_key_value_heads = get_or<int>(j, "num_key_value_heads", c.num_attention_heads);
  c.head_dim = get_or<int>(j, "head_dim", c.num_attention_heads ? c.hidden_size / c.num_attention_heads : 0);
  c.vocab_size = need<int>(j, "vocab_size", where);
  c.max_position_embeddings = get_or<int>(j, "max_position_embeddings", 4096);
  c.rms_norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6);
  c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false);
  c.attention_bias = c.architecture == "qwen2" ? true : get_or<bool>(j, "attention_bias", false);
  c.qk_norm = c.architecture == "qwen3";
  // transformers' Qwen3 adds q/k biases before its head norms; ours are added after (with RoPE).
  if (c.qk_norm && c.attention_bias)
    throw CheckpointError(where + ": qwen3 with attention_bias is not supported (no published checkpoint has it)");
  // What the forward pass does not implement ends here rather than giving other numbers than
  // transformers: another activation, MLP biases, sliding-window layers.
  const std::string act = get_or<std::string>(j, "hidden_act", "silu");
  if (act != "silu" && act != "swish")
    throw CheckpointError(where + ": hidden_act \"" + act + "\" is not supported (supported: silu)");
  if (get_or<bool>(j, "mlp_bias", false))
    throw CheckpointError(where + ": mlp_bias is not supported (the MLP projections have no biases here)");
  // Sliding layers as transformers' Qwen2/Qwen3 configs derive them: the window is
  // sliding_window with use_sliding_window on (else none); the layers, config's layer_types if
  // given, else those from max_window_layers on. A window as long as the context never cuts.
  const int window = c.architecture != "llama" && get_or<bool>(j, "use_sliding_window", false)
                         ? get_or<int>(j, "sliding_window", 0)
                         : 0;
  bool sliding = false;
  if (j.contains("layer_types") && j["layer_types"].is_array())
    for (const auto& t : j["layer_types"]) sliding = sliding || (t.is_string() && t.get<std::string>() != "full_attention");
  else
    sliding = get_or<int>(j, "max_window_layers", c.num_hidden_layers) < c.num_hidden_layers;
  if (window > 0 && sliding && window < get_or<int>(j, "max_position_embeddings", 4096))
    throw CheckpointError(where + ": sliding-window attention layers (use_sliding_window / layer_types, a " +
                          std::to_string(window) + "-token window) are not supported");
  c.torch_dtype = get_or<std::string>(j, "torch_dtype", get_or<std::string>(j, "dtype", "bfloat16"));
  if (j.contains("eos_token_id")) {
    if (j["eos_token_id"].is_array()) c.eos_token_ids = j["eos_token_id"].get<std::vector<int>>();
    else if (j["eos_token_id"].is_number_integer()) c.eos_token_ids = {j["eos_token_id"].get<int>()};
  }
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"].get<int>();
  if (c.is_deepseek_v3()) read_deepseek_v3(j, c, where);
  read_quantization(j, c, where);
  read_rope(j, c, where);
  if (c.hidden_size <= 0 || c.num_hidden_layers <= 0 || c.num_attention_heads <= 0 || c.num_key_value_heads <= 0 ||
      c.head_dim <= 0 || c.vocab_size <= 0 || c.intermediate_size <= 0)
    throw CheckpointError(where + ": sizes must be positive");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    throw CheckpointError(where + ": num_attention_heads " + std::to_string(c.num_attention_heads) +
                          " is not a multiple of num_key_value_heads " + std::to_string(c.num_key_value_heads));
  return c;
}

ModelConfig ModelConfig::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw CheckpointError(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_text(ss.str(), path);
}

ModelConfig ModelConfig::from_dir(const std::string& dir) {
  const std::string path = dir + "/config.json";
  if (!std::ifstream(path)) throw CheckpointError(path + ": cannot open (is --model a checkpoint directory?)");
  return from_file(path);
}

namespace {

// YaRN (transformers' _compute_yarn_parameters): each frequency blends its extrapolated value
// (unchanged) and its interpolated one (divided by factor), by a linear ramp over the dims
// between the ones that make beta_fast and beta_slow rotations in the original context.
void apply_yarn(const ModelConfig& c, std::vector<float>& inv) {
  const RopeScaling& s = c.rope_scaling;
  const double dim = c.head_dim, base = c.rope_theta, orig = s.original_max_position_embeddings;
  auto correction_dim = [&](double rotations) {
    return dim * std::log(orig / (rotations * 2.0 * M_PI)) / (2.0 * std::log(base));
  };
  double low = correction_dim(s.beta_fast), high = correction_dim(s.beta_slow);
  if (s.truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0), high = std::min(high, dim - 1);
  if (low == high) high += 0.001;  // no division by zero
  for (std::size_t i = 0; i < inv.size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation = 1.0 - ramp;  // its weight
    const double f = inv[i];
    inv[i] = static_cast<float>(f / s.factor * (1.0 - extrapolation) + f * extrapolation);
  }
}

double yarn_mscale(double scale, double mscale) { return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

double rope_attention_factor(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  if (s.type != "yarn") return 1.0;
  if (s.attention_factor > 0) return s.attention_factor;
  if (s.mscale != 0 && s.mscale_all_dim != 0) return yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim);
  return yarn_mscale(s.factor, 1.0);
}

float attention_softmax_scale(const ModelConfig& c) {
  if (c.is_deepseek_v3()) {
    const double plain = 1.0 / std::sqrt(static_cast<double>(c.mla.qk_head_dim()));
    const RopeScaling& s = c.rope_scaling;
    if (s.type == "default" || s.mscale_all_dim == 0) return static_cast<float>(plain);
    const double m = yarn_mscale(s.factor, s.mscale_all_dim);
    return static_cast<float>(plain * m * m);
  }
  const float plain = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const double m = rope_attention_factor(c);
  return m == 1.0 ? plain : static_cast<float>(m * m / std::sqrt(static_cast<double>(c.head_dim)));
}

std::vector<float> rope_inverse_frequencies(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) inv[i] = static_cast<float>(1.0 / std::pow(c.rope_theta, (2.0 * i) / c.head_dim));
  if (c.rope_scaling.type == "yarn") {
    apply_yarn(c, inv);
    return inv;
  }
  if (c.rope_scaling.type != "llama3") return inv;
  // Llama 3: long wavelengths are slowed by `factor`, short ones kept, a smooth blend between.
  const RopeScaling& s = c.rope_scaling;
  const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (int i = 0; i < half; ++i) {
    const double f = inv[i];
    const double wavelen = 2.0 * M_PI / f;
    double out = f;
    if (wavelen > low_wavelen) {
      out = f / s.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      out = (1.0 - smooth) * f / s.factor + smooth * f;
    }
    inv[i] = static_cast<float>(out);
  }
  return inv;
}

}  // namespace lockstep
