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
#include "model/deepseek_v3_weights.h"
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
  const DeepseekV3LayerSlices from = deepseek_v3_layer_slices(c, s, l);
  auto read = [&](const StackedSlices& slices) { return read_stacked<W>(w, slices); };
  Layer<W> L;
  L.input_norm = read(from.input_norm);
  L.post_norm = read(from.post_norm);
  L.q_a = read(from.q_a);
  L.q_a_norm = read(from.q_a_norm);
  L.q_b = read(from.q_b);
  L.kv_a = read(from.kv_a);
  L.kv_a_norm = read(from.kv_a_norm);
  L.kv_b = read(from.kv_b);
  L.o = read(from.o);
  L.gate_up = read(from.gate_up);
  L.down = read(from.down);
  L.router = read(from.router);
  if (!from.router.empty()) {
    const WeightSlice& b = from.correction_bias;
    L.correction_bias = w.read<float>(b.name, b.shape, b.r0, b.r1, b.c0, b.c1);
  }
  for (const StackedSlices& e : from.expert_gate_up) L.expert_gate_up.push_back(read(e));
  for (const StackedSlices& e : from.expert_down) L.expert_down.push_back(read(e));
  L.shared_gate_up = read(from.shared_gate_up);
  L.shared_down = read(from.shared_down);
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
    std::vector<float> q_latent(T * heads * kvr), o_latent(T * heads * kvr);
    cpu::mla_absorb_q(q.data(), T, heads, heads * qk, qk, L.kv_b.data(), nope, v, kvr, q_latent.data());
    cpu::latent_attention(q_latent.data(), q.data() + nope, heads * qk, qk, L.cache.data(), T, heads, kvr, rope, block_size_,
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
