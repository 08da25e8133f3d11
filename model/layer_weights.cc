// Weight slicing and reading (see layer_weights.h).
#include "model/layer_weights.h"

#include <initializer_list>
#include <string>
#include <utility>

#include "kernels/fatal.h"
#include "kernels/log.h"

namespace lockstep {
namespace {

// The parts one after the other (row-major [out, in] slices stack by output rows).
template <HalfFloat W>
std::vector<W> stacked(std::initializer_list<std::vector<W>> parts) {
  std::size_t n = 0;
  for (const auto& p : parts) n += p.size();
  std::vector<W> all;
  all.reserve(n);
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

}  // namespace

TensorParallelSlice TensorParallelSlice::make(const ModelConfig& c, int r, int n) {
  auto bad = [&](const std::string& what) {
    return CheckpointError("tensor-parallel size " + std::to_string(n) + " does not divide " + what);
  };
  if (c.num_attention_heads % n) throw bad("num_attention_heads " + std::to_string(c.num_attention_heads));
  if (c.intermediate_size % n) throw bad("intermediate_size " + std::to_string(c.intermediate_size));
  TensorParallelSlice s;
  s.tp_rank = r;
  s.tp_size = n;
  s.q_heads = c.num_attention_heads / n;
  s.q_head_begin = r * s.q_heads;
  if (c.num_key_value_heads >= n) {
    if (c.num_key_value_heads % n) throw bad("num_key_value_heads " + std::to_string(c.num_key_value_heads));
    s.kv_heads = c.num_key_value_heads / n;
    s.kv_head_begin = r * s.kv_heads;
  } else {  // more ranks than KV heads: each rank keeps the one KV head its query heads use
    if (n % c.num_key_value_heads) throw bad("a multiple of num_key_value_heads " + std::to_string(c.num_key_value_heads));
    s.kv_heads = 1;
    s.kv_head_begin = r * c.num_key_value_heads / n;
  }
  s.ffn = c.intermediate_size / n;
  s.ffn_begin = r * s.ffn;
  s.vocab_padded = (c.vocab_size + n - 1) / n * n;
  s.vocab_rows = s.vocab_padded / n;
  s.vocab_begin = r * s.vocab_rows;
  return s;
}

template <HalfFloat W>
LayerWeights<W> read_layer_weights(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& s, int l) {
  const std::int64_t H = c.hidden_size, hd = c.head_dim, I = c.intermediate_size;
  const std::int64_t q0 = s.q_head_begin * hd, q1 = (s.q_head_begin + s.q_heads) * hd;
  const std::int64_t k0 = s.kv_head_begin * hd, k1 = (s.kv_head_begin + s.kv_heads) * hd;
  const std::int64_t f0 = s.ffn_begin, f1 = s.ffn_begin + s.ffn;
  const std::int64_t QH = static_cast<std::int64_t>(c.num_attention_heads) * hd;
  const std::int64_t KH = static_cast<std::int64_t>(c.num_key_value_heads) * hd;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  LayerWeights<W> L;
  L.input_norm = w.read_all<W>(p + "input_layernorm.weight", {H});
  L.post_norm = w.read_all<W>(p + "post_attention_layernorm.weight", {H});
  L.qkv = stacked({w.read<W>(p + "self_attn.q_proj.weight", {QH, H}, q0, q1, 0, H),
                   w.read<W>(p + "self_attn.k_proj.weight", {KH, H}, k0, k1, 0, H),
                   w.read<W>(p + "self_attn.v_proj.weight", {KH, H}, k0, k1, 0, H)});
  if (c.attention_bias)
    L.qkv_bias = stacked({w.read<W>(p + "self_attn.q_proj.bias", {QH}, q0, q1, 0, 1),
                          w.read<W>(p + "self_attn.k_proj.bias", {KH}, k0, k1, 0, 1),
                          w.read<W>(p + "self_attn.v_proj.bias", {KH}, k0, k1, 0, 1)});
  if (c.qk_norm) {
    L.q_norm = w.read_all<W>(p + "self_attn.q_norm.weight", {hd});
    L.k_norm = w.read_all<W>(p + "self_attn.k_norm.weight", {hd});
  }
  L.o = w.read<W>(p + "self_attn.o_proj.weight", {H, QH}, 0, H, q0, q1);
  L.gate_up = stacked({w.read<W>(p + "mlp.gate_proj.weight", {I, H}, f0, f1, 0, H),
                       w.read<W>(p + "mlp.up_proj.weight", {I, H}, f0, f1, 0, H)});
  L.down = w.read<W>(p + "mlp.down_proj.weight", {H, I}, 0, H, f0, f1);
  return L;
}

template <HalfFloat W>
LayerPrefetcher<W>::LayerPrefetcher(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& s,
                                    int begin, int end)
    : config_(c), weights_(w), slice_(s), next_(begin), end_(end) {
  if (next_ < end_) pending_ = start(next_);
}

template <HalfFloat W>
std::future<LayerWeights<W>> LayerPrefetcher<W>::start(int layer) const {
  return std::async(std::launch::async,
                    [this, layer] { return read_layer_weights<W>(config_, weights_, slice_, layer); });
}

template <HalfFloat W>
LayerWeights<W> LayerPrefetcher<W>::next() {
  LS_CHECK(next_ < end_, "LayerPrefetcher: read past the stage's last layer");
  LayerWeights<W> layer = pending_.get();
  if (++next_ < end_) pending_ = start(next_);
  return layer;
}

template <HalfFloat W>
StageEdgeWeights<W> read_edge_weights(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& s,
                                      bool first, bool last) {
  const std::int64_t H = c.hidden_size, V = c.vocab_size;
  const std::int64_t v0 = s.vocab_begin, v1 = s.vocab_begin + s.vocab_rows;
  StageEdgeWeights<W> e;
  if (first || (last && c.tie_word_embeddings)) e.embed = w.read<W>("model.embed_tokens.weight", {V, H}, v0, v1, 0, H);
  if (last) {
    e.final_norm = w.read_all<W>("model.norm.weight", {H});
    e.lm_head = c.tie_word_embeddings ? e.embed : w.read<W>("lm_head.weight", {V, H}, v0, v1, 0, H);
  }
  if (!first) e.embed.clear();  // only stage 0 embeds; a tied lm_head keeps its own copy
  return e;
}

// The model runs in one of these (weight_type.h).
#define LOCKSTEP_LAYER_WEIGHTS(W)                                                                                   \
  template LayerWeights<W> read_layer_weights<W>(const ModelConfig&, const WeightSource&, const TensorParallelSlice&, \
                                                 int);                                                             \
  template class LayerPrefetcher<W>;                                                                                \
  template StageEdgeWeights<W> read_edge_weights<W>(const ModelConfig&, const WeightSource&,                        \
                                                    const TensorParallelSlice&, bool, bool);
LOCKSTEP_LAYER_WEIGHTS(bf16)
LOCKSTEP_LAYER_WEIGHTS(fp16)
#undef LOCKSTEP_LAYER_WEIGHTS

LoadProgress::LoadProgress(const WeightSource& weights, int tp_rank, int stage, std::string where)
    : weights_(weights), log_(tp_rank == 0), stage_(stage), where_(std::move(where)) {}

void LoadProgress::layer_done(int done, int total) const {
  if (!log_) return;
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double bytes = static_cast<double>(weights_.bytes_read());
  LS_INFO("loading weights" << where_ << ", stage " << stage_ << ": layer " << done << "/" << total << ", "
                            << bytes / 1e6 << " MB, " << (sec > 0 ? bytes / 1e9 / sec : 0.0) << " GB/s");
}

}  // namespace lockstep
