// DeepseekV3Transformer (see deepseek_v3_transformer.h).
#include "model/deepseek_v3_transformer.h"

#include <algorithm>
#include <future>
#include <string>
#include <vector>

#include "kernels/dense_ops.h"
#include "kernels/latent_attention.h"
#include "kernels/moe_routing.h"
#include "model/cpu_stage_edges.h"
#include "model/weight_type.h"

namespace lockstep {
namespace {

// transformers builds q_a_layernorm and kv_a_layernorm with DeepseekV3RMSNorm's default eps, not
// the config's rms_norm_eps (the same 1e-6 in DeepSeek's configs).
constexpr float kLatentNormEps = 1e-6f;

// One decoder layer's weights as this rank holds them (W: the model's dtype; row-major [out, in]).
template <HalfFloat W>
struct Layer {
  std::vector<W> input_norm, post_norm;  // [hidden]
  std::vector<W> q_a, q_a_norm;          // [q_lora_rank, hidden], [q_lora_rank]; empty without a q low rank
  std::vector<W> q_b;                    // [heads * qk_head_dim, q_lora_rank or hidden]: q_b_proj or q_proj rows
  std::vector<W> kv_a, kv_a_norm;        // [kv_lora_rank + rope, hidden], [kv_lora_rank]
  std::vector<W> kv_b;                   // [heads * (nope + v), kv_lora_rank]
  std::vector<W> o;                      // [hidden, heads * v]
  std::vector<W> gate_up, down;          // a dense layer's MLP (intermediate_size columns)
  std::vector<W> router;                 // [experts, hidden]
  std::vector<float> correction_bias;    // [experts], fp32 as the hub stores it
  std::vector<std::vector<W>> expert_gate_up, expert_down;  // per routed expert
  std::vector<W> shared_gate_up, shared_down;               // the shared experts, as one MLP
  std::vector<float> cache;              // [blocks * block_size, kv_lora_rank + rope]: latent, RoPE key
};

template <HalfFloat W>
Layer<W> read_layer(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& s, int l) {
  const LatentAttentionConfig& a = c.mla;
  const std::int64_t H = c.hidden_size, NH = c.num_attention_heads, qk = a.qk_head_dim();
  const std::int64_t h0 = s.q_head_begin, h1 = s.q_head_begin + s.q_heads;
  const std::int64_t kvr = a.kv_lora_rank, nv = a.qk_nope_head_dim + a.v_head_dim, v = a.v_head_dim;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  auto whole = [&](const std::string& name, std::int64_t rows, std::int64_t cols) {
    return read_stacked<W>(w, {{p + name, cols == 1 ? std::vector<std::int64_t>{rows} : std::vector<std::int64_t>{rows, cols},
                                0, rows, 0, cols}});
  };
  auto rows = [&](const std::string& name, std::int64_t all, std::int64_t cols, std::int64_t r0, std::int64_t r1) {
    return read_stacked<W>(w, {{p + name, {all, cols}, r0, r1, 0, cols}});
  };
  // An MLP's gate|up rows [f0, f1) and down columns [f0, f1) of an `inter`-wide projection.
  auto mlp = [&](const std::string& prefix, std::int64_t inter, std::int64_t f0, std::int64_t f1,
                 std::vector<W>& gate_up, std::vector<W>& down) {
    gate_up = read_stacked<W>(w, {{p + prefix + "gate_proj.weight", {inter, H}, f0, f1, 0, H},
                                  {p + prefix + "up_proj.weight", {inter, H}, f0, f1, 0, H}});
    down = read_stacked<W>(w, {{p + prefix + "down_proj.weight", {H, inter}, 0, H, f0, f1}});
  };
  Layer<W> L;
  L.input_norm = whole("input_layernorm.weight", H, 1);
  L.post_norm = whole("post_attention_layernorm.weight", H, 1);
  if (a.q_lora_rank > 0) {
    L.q_a = whole("self_attn.q_a_proj.weight", a.q_lora_rank, H);
    L.q_a_norm = whole("self_attn.q_a_layernorm.weight", a.q_lora_rank, 1);
    L.q_b = rows("self_attn.q_b_proj.weight", NH * qk, a.q_lora_rank, h0 * qk, h1 * qk);
  } else {
    L.q_b = rows("self_attn.q_proj.weight", NH * qk, H, h0 * qk, h1 * qk);
  }
  L.kv_a = whole("self_attn.kv_a_proj_with_mqa.weight", a.cache_width(), H);
  L.kv_a_norm = whole("self_attn.kv_a_layernorm.weight", kvr, 1);
  L.kv_b = rows("self_attn.kv_b_proj.weight", NH * nv, kvr, h0 * nv, h1 * nv);
  L.o = read_stacked<W>(w, {{p + "self_attn.o_proj.weight", {H, NH * v}, 0, H, h0 * v, h1 * v}});
  const MixtureOfExpertsConfig& m = c.moe;
  if (!m.is_moe_layer(l)) {
    mlp("mlp.", c.intermediate_size, s.ffn_begin, s.ffn_begin + s.ffn, L.gate_up, L.down);
    return L;
  }
  const std::int64_t E = m.n_routed_experts, mi = m.moe_intermediate_size;
  L.router = whole("mlp.gate.weight", E, H);
  L.correction_bias = w.read<float>(p + "mlp.gate.e_score_correction_bias", {E}, 0, E, 0, 1);
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

}  // namespace

template <HalfFloat W>
class DeepseekV3Transformer::StageIn final : public ForwardModel {
 public:
  StageIn(const ModelConfig& c, const WeightSource& w, Collectives& tp, Collectives& pp, const LayerRange& layers,
          int num_kv_blocks, int block_size)
      : config_(c),
        slice_(TensorParallelSlice::make(c, tp.rank(), tp.size())),
        tp_(tp),
        pp_(pp),
        layers_(layers),
        num_kv_blocks_(num_kv_blocks),
        block_size_(block_size),
        inv_freq_(rope_inverse_frequencies(c)),
        rope_factor_(static_cast<float>(rope_attention_factor(c))),
        scale_(attention_softmax_scale(c)) {
    const LoadProgress progress(w, tp.rank(), pp.rank(), "");
    edge_ = read_edge_weights<W>(c, w, slice_, pp.rank() == 0, pp.rank() == pp.size() - 1);
    const std::int64_t cache = static_cast<std::int64_t>(num_kv_blocks) * block_size * c.mla.cache_width();
    // Reads layer l + 1 on another thread while layer l's cache is set up.
    auto start = [&](int l) { return std::async(std::launch::async, [&, l] { return read_layer<W>(c, w, slice_, l); }); };
    std::future<Layer<W>> next = layers.begin < layers.end ? start(layers.begin) : std::future<Layer<W>>{};
    for (int l = layers.begin; l < layers.end; ++l) {
      auto L = std::make_unique<Layer<W>>(next.get());
      if (l + 1 < layers.end) next = start(l + 1);
      L->cache.assign(cache, 0.0f);
      layer_.push_back(std::move(L));
      progress.layer_done(l - layers.begin + 1, layers.size());
    }
  }

  std::span<const float> forward(const ForwardBatch& b) override {
    const std::int64_t T = b.token_ids.size(), H = config_.hidden_size;
    std::vector<float> h;
    cpu_stage_input(config_, slice_, edge_, tp_, pp_, b, h);
    std::vector<float> x(T * H), out(T * H);
    const float eps = static_cast<float>(config_.rms_norm_eps);
    const std::vector<std::int64_t> slots = kv_cache_slots(b, block_size_, num_kv_blocks_);
    for (int i = 0; i < static_cast<int>(layer_.size()); ++i) {
      Layer<W>& L = *layer_[i];
      cpu::rms_norm(h.data(), T, H, L.input_norm.data(), eps, x.data());
      attention(L, b, slots, x, out);
      for (std::int64_t k = 0; k < T * H; ++k) h[k] += out[k];
      cpu::rms_norm(h.data(), T, H, L.post_norm.data(), eps, x.data());
      if (config_.moe.is_moe_layer(layers_.begin + i)) moe(L, x, T, out);
      else cpu::swiglu_mlp(x.data(), T, H, L.gate_up.data(), L.down.data(), slice_.ffn, out.data());
      if (tp_.size() > 1) tp_.all_reduce(out.data(), out.data(), out.size(), DType::F32, ReduceOp::Sum);
      for (std::int64_t k = 0; k < T * H; ++k) h[k] += out[k];
    }
    if (!cpu_stage_output(config_, slice_, edge_, tp_, pp_, b, h, logits_)) return {};
    return logits_;
  }

  const ModelConfig& config() const override { return config_; }
  int block_size() const override { return block_size_; }
  int num_kv_blocks() const override { return num_kv_blocks_; }

 private:
  // out [T, hidden] = this rank's heads' part of o_proj (all-reduced in here).
  void attention(Layer<W>& L, const ForwardBatch& b, const std::vector<std::int64_t>& slots,
                 const std::vector<float>& x, std::vector<float>& out) {
    const LatentAttentionConfig& a = config_.mla;
    const std::int64_t T = b.token_ids.size(), H = config_.hidden_size, heads = slice_.q_heads;
    const std::int64_t qk = a.qk_head_dim(), nope = a.qk_nope_head_dim, rope = a.qk_rope_head_dim;
    const std::int64_t kvr = a.kv_lora_rank, width = a.cache_width(), v = a.v_head_dim;
    std::vector<float> q(T * heads * qk);
    if (!L.q_a.empty()) {
      std::vector<float> qa(T * a.q_lora_rank);
      cpu::linear(x.data(), T, H, L.q_a.data(), a.q_lora_rank, nullptr, qa.data());
      cpu::rms_norm(qa.data(), T, a.q_lora_rank, L.q_a_norm.data(), kLatentNormEps, qa.data());
      cpu::linear(qa.data(), T, a.q_lora_rank, L.q_b.data(), heads * qk, nullptr, q.data());
    } else {
      cpu::linear(x.data(), T, H, L.q_b.data(), heads * qk, nullptr, q.data());
    }
    // The latent (normed) and the RoPE key of every new token, into the cache.
    std::vector<float> kv(T * width);
    cpu::linear(x.data(), T, H, L.kv_a.data(), width, nullptr, kv.data());
    for (std::int64_t t = 0; t < T; ++t) cpu::rms_norm(&kv[t * width], 1, kvr, L.kv_a_norm.data(), kLatentNormEps, &kv[t * width]);
    cpu::rope_pairs(kv.data() + kvr, T, 1, width, 0, rope, b.positions.data(), inv_freq_.data(), rope_factor_,
                    a.rope_interleave);
    for (std::int64_t t = 0; t < T; ++t)
      std::copy(kv.begin() + t * width, kv.begin() + (t + 1) * width, L.cache.begin() + slots[t] * width);
    cpu::rope_pairs(q.data() + nope, T, heads, heads * qk, qk, rope, b.positions.data(), inv_freq_.data(), rope_factor_,
                    a.rope_interleave);
    std::vector<float> q_latent(T * heads * kvr), q_rope(T * heads * rope), o_latent(T * heads * kvr);
    cpu::mla_absorb_q(q.data(), T, heads, heads * qk, qk, L.kv_b.data(), nope, v, kvr, q_latent.data());
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t hh = 0; hh < heads; ++hh)
        std::copy_n(q.begin() + (t * heads + hh) * qk + nope, rope, q_rope.begin() + (t * heads + hh) * rope);
    cpu::latent_attention(q_latent.data(), q_rope.data(), L.cache.data(), T, heads, kvr, rope, block_size_,
                          b.seq_of_token.data(), b.positions.data(), b.block_tables.data(), b.max_blocks, scale_,
                          o_latent.data());
    std::vector<float> att(T * heads * v);
    cpu::mla_expand_v(o_latent.data(), T, heads, L.kv_b.data(), nope, v, kvr, att.data());
    cpu::linear(att.data(), T, heads * v, L.o.data(), H, nullptr, out.data());
    if (tp_.size() > 1) tp_.all_reduce(out.data(), out.data(), out.size(), DType::F32, ReduceOp::Sum);
  }

  // out [T, hidden] = this rank's columns of the shared experts plus, per token, its routed
  // experts' outputs times their weights (summed over TP by the caller).
  void moe(Layer<W>& L, const std::vector<float>& x, std::int64_t T, std::vector<float>& out) {
    const MixtureOfExpertsConfig& m = config_.moe;
    const std::int64_t H = config_.hidden_size, E = m.n_routed_experts, K = m.num_experts_per_tok;
    std::vector<float> logits(T * E);
    cpu::linear(x.data(), T, H, L.router.data(), E, nullptr, logits.data());
    const cpu::ExpertRouting routing{static_cast<int>(E), m.n_group, m.topk_group, static_cast<int>(K),
                                     m.norm_topk_prob, static_cast<float>(m.routed_scaling_factor)};
    std::vector<int> ids(T * K);
    std::vector<float> weights(T * K);
    cpu::route_experts(logits.data(), T, L.correction_bias.data(), routing, ids.data(), weights.data());
    if (m.n_shared_experts > 0) {
      cpu::swiglu_mlp(x.data(), T, H, L.shared_gate_up.data(), L.shared_down.data(), slice_.shared_ffn, out.data());
    } else {
      std::fill(out.begin(), out.end(), 0.0f);
    }
    // Each expert runs once over the tokens routed to it.
    std::vector<std::vector<std::pair<std::int64_t, float>>> routed(E);
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t k = 0; k < K; ++k) routed[ids[t * K + k]].push_back({t, weights[t * K + k]});
    std::vector<float> in, y;
    for (std::int64_t e = 0; e < E; ++e) {
      const auto& tokens = routed[e];
      if (tokens.empty()) continue;
      const std::int64_t n = tokens.size();
      in.resize(n * H);
      y.resize(n * H);
      for (std::int64_t i = 0; i < n; ++i)
        std::copy_n(x.begin() + tokens[i].first * H, H, in.begin() + i * H);
      cpu::swiglu_mlp(in.data(), n, H, L.expert_gate_up[e].data(), L.expert_down[e].data(), slice_.expert_ffn,
                      y.data());
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < H; ++j) out[tokens[i].first * H + j] += tokens[i].second * y[i * H + j];
    }
  }

  ModelConfig config_;
  TensorParallelSlice slice_;
  Collectives& tp_;
  Collectives& pp_;
  LayerRange layers_;
  int num_kv_blocks_, block_size_;
  std::vector<float> inv_freq_;
  float rope_factor_, scale_;
  StageEdgeWeights<W> edge_;
  std::vector<std::unique_ptr<Layer<W>>> layer_;
  std::vector<float> logits_;  // the last forward's, which it returns a view of
};

DeepseekV3Transformer::DeepseekV3Transformer(const ModelConfig& c, const WeightSource& w, Collectives& tp,
                                             Collectives& pp, const LayerRange& layers, int num_kv_blocks,
                                             int block_size)
    : stage_(with_weight_type(c.dtype, [&]<HalfFloat W>(W) -> std::unique_ptr<ForwardModel> {
        return std::make_unique<StageIn<W>>(c, w, tp, pp, layers, num_kv_blocks, block_size);
      })) {}

DeepseekV3Transformer::~DeepseekV3Transformer() = default;

}  // namespace lockstep
