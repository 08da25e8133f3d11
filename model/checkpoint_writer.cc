// Checkpoint writer (see checkpoint_writer.h).
#include "model/checkpoint_writer.h"

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/weight_source.h"

namespace lockstep {
namespace {

std::uint64_t element_count(const std::vector<std::int64_t>& shape) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

std::string shard_name(int k, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", k, n);
  return buf;
}

}  // namespace

namespace {

// deepseek_v3's decoder layer l: MLA's projections and norms, then a dense MLP or the router,
// the routed experts and the shared experts.
void deepseek_v3_layer_tensors(const ModelConfig& c, int l, std::vector<TensorSpec>& t) {
  const LatentAttentionConfig& a = c.mla;
  const MixtureOfExpertsConfig& m = c.moe;
  const std::int64_t H = c.hidden_size, NH = c.num_attention_heads;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  auto mlp = [&](const std::string& prefix, std::int64_t inter) {
    t.push_back({p + prefix + "gate_proj.weight", {inter, H}});
    t.push_back({p + prefix + "up_proj.weight", {inter, H}});
    t.push_back({p + prefix + "down_proj.weight", {H, inter}});
  };
  t.push_back({p + "input_layernorm.weight", {H}});
  if (a.q_lora_rank > 0) {
    t.push_back({p + "self_attn.q_a_proj.weight", {a.q_lora_rank, H}});
    t.push_back({p + "self_attn.q_a_layernorm.weight", {a.q_lora_rank}});
    t.push_back({p + "self_attn.q_b_proj.weight", {NH * a.qk_head_dim(), a.q_lora_rank}});
  } else {
    t.push_back({p + "self_attn.q_proj.weight", {NH * a.qk_head_dim(), H}});
  }
  t.push_back({p + "self_attn.kv_a_proj_with_mqa.weight", {a.cache_width(), H}});
  t.push_back({p + "self_attn.kv_a_layernorm.weight", {a.kv_lora_rank}});
  t.push_back({p + "self_attn.kv_b_proj.weight", {NH * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank}});
  t.push_back({p + "self_attn.o_proj.weight", {H, NH * a.v_head_dim}});
  t.push_back({p + "post_attention_layernorm.weight", {H}});
  if (!m.is_moe_layer(l)) {
    mlp("mlp.", c.intermediate_size);
    return;
  }
  t.push_back({p + "mlp.gate.weight", {m.n_routed_experts, H}});
  t.push_back({p + "mlp.gate.e_score_correction_bias", {m.n_routed_experts}, true});
  for (int e = 0; e < m.n_routed_experts; ++e) mlp("mlp.experts." + std::to_string(e) + ".", m.moe_intermediate_size);
  if (m.n_shared_experts > 0) mlp("mlp.shared_experts.", static_cast<std::int64_t>(m.n_shared_experts) * m.moe_intermediate_size);
}

}  // namespace

std::vector<TensorSpec> checkpoint_tensors(const ModelConfig& c) {
  const std::int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const std::int64_t QH = static_cast<std::int64_t>(c.num_attention_heads) * c.head_dim;
  const std::int64_t KH = static_cast<std::int64_t>(c.num_key_value_heads) * c.head_dim;
  std::vector<TensorSpec> t{{"model.embed_tokens.weight", {V, H}}};
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    if (c.is_deepseek_v3()) {
      deepseek_v3_layer_tensors(c, l, t);
      continue;
    }
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {H}});
    t.push_back({p + "self_attn.q_proj.weight", {QH, H}});
    t.push_back({p + "self_attn.k_proj.weight", {KH, H}});
    t.push_back({p + "self_attn.v_proj.weight", {KH, H}});
    if (c.attention_bias) {
      t.push_back({p + "self_attn.q_proj.bias", {QH}});
      t.push_back({p + "self_attn.k_proj.bias", {KH}});
      t.push_back({p + "self_attn.v_proj.bias", {KH}});
    }
    t.push_back({p + "self_attn.o_proj.weight", {H, QH}});
    if (c.qk_norm) {
      t.push_back({p + "self_attn.q_norm.weight", {c.head_dim}});
      t.push_back({p + "self_attn.k_norm.weight", {c.head_dim}});
    }
    t.push_back({p + "post_attention_layernorm.weight", {H}});
    t.push_back({p + "mlp.gate_proj.weight", {I, H}});
    t.push_back({p + "mlp.up_proj.weight", {I, H}});
    t.push_back({p + "mlp.down_proj.weight", {H, I}});
  }
  t.push_back({"model.norm.weight", {H}});
  if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", {V, H}});
  return t;
}

void write_dummy_checkpoint(const ModelConfig& c, const std::string& dir, const CheckpointWriteOptions& o) {
  const std::vector<TensorSpec> tensors = checkpoint_tensors(c);
  // Group tensors into shards of at most max_shard_bytes (a bigger tensor gets a shard of its own).
  std::vector<std::vector<const TensorSpec*>> shards(1);
  std::uint64_t in_shard = 0, total = 0;
  const auto stored_bytes = [](const TensorSpec& t) { return element_count(t.shape) * (t.fp32 ? 4 : 2); };
  for (const TensorSpec& t : tensors) {
    const std::uint64_t bytes = stored_bytes(t);
    if (in_shard > 0 && in_shard + bytes > o.max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&t);
    in_shard += bytes;
    total += bytes;
  }
  // As --load-format dummy makes them: a block-fp8 config's routed experts as their fp8 codes'
  // values (written in 16 bits, without scales), so the two runs are the same model.
  const DummyWeights values(o.seed, DummyWeights::kDefaultScale,
                            c.fp8_weights ? Fp8Blocks{c.fp8_block_rows, c.fp8_block_cols} : Fp8Blocks{});
  const bool f16 = c.torch_dtype == "float16";  // else bf16 (float32 configs too: half the size)
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::uint64_t written = 0;
  const int n = static_cast<int>(shards.size());
  for (int k = 0; k < n; ++k) {
    const std::string name = shard_name(k + 1, n);
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    header["__metadata__"] = {{"format", "pt"}};
    std::uint64_t offset = 0;
    for (const TensorSpec* t : shards[k]) {
      const std::uint64_t bytes = stored_bytes(*t);
      header[t->name] = {{"dtype", t->fp32 ? "F32" : f16 ? "F16" : "BF16"},
                         {"shape", t->shape},
                         {"data_offsets", {offset, offset + bytes}}};
      offset += bytes;
      weight_map[t->name] = name;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as safetensors writes it
    const std::string path = dir + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const std::uint64_t header_len = text.size();
    out.write(reinterpret_cast<const char*>(&header_len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const TensorSpec* t : shards[k]) {
      const auto write = [&](const auto& data) {
        const auto size = data.size() * sizeof(data[0]);
        out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(size));
        written += size;
      };
      if (t->fp32) write(values.read_all<float>(t->name, t->shape));
      else if (f16) write(values.read_all<fp16>(t->name, t->shape));
      else write(values.read_all<bf16>(t->name, t->shape));
      if (o.progress) o.progress(written, total);
    }
    out.close();
    if (!out) throw CheckpointError("cannot write " + path + " (disk full or not writable?)");
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  std::ofstream idx(dir + "/model.safetensors.index.json", std::ios::trunc);
  idx << index.dump(2) << "\n";
  idx.close();
  if (!idx) throw CheckpointError("cannot write " + dir + "/model.safetensors.index.json");
}

}  // namespace lockstep
