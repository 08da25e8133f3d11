// Weight slicing and reading (see layer_weights.h).
#include "model/layer_weights.h"

#include <string>
#include <utility>

#include "kernels/fatal.h"
#include "kernels/log.h"

namespace lockstep {

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
  if (c.moe.n_routed_experts > 0) {
    // Every rank holds a column slice of every expert (vLLM's TP for MoE), so a token's experts
    // run on all ranks and one all-reduce sums them with the attention's way.
    if (c.moe.moe_intermediate_size % n) throw bad("moe_intermediate_size " + std::to_string(c.moe.moe_intermediate_size));
    s.expert_ffn = c.moe.moe_intermediate_size / n;
    s.expert_ffn_begin = r * s.expert_ffn;
    s.shared_ffn = c.moe.n_shared_experts * s.expert_ffn;
    s.shared_ffn_begin = r * s.shared_ffn;
  }
  s.vocab_padded = (c.vocab_size + n - 1) / n * n;
  s.vocab_rows = s.vocab_padded / n;
  s.vocab_begin = r * s.vocab_rows;
  return s;
}

std::int64_t stacked_elements(const StackedSlices& s) {
  std::int64_t n = 0;
  for (const WeightSlice& p : s) n += p.rows() * p.cols();
  return n;
}

template <HalfFloat W>
std::vector<W> read_stacked(const WeightSource& w, const StackedSlices& s) {
  std::vector<W> all(static_cast<std::size_t>(stacked_elements(s)));
  W* at = all.data();
  for (const WeightSlice& p : s) {
    w.read_into(p.name, p.shape, p.r0, p.r1, p.c0, p.c1, dtype_of<W>, at);
    at += p.rows() * p.cols();
  }
  return all;
}

LayerWeightSlices layer_weight_slices(const ModelConfig& c, const TensorParallelSlice& s, int l) {
  const std::int64_t H = c.hidden_size, hd = c.head_dim, I = c.intermediate_size;
  const std::int64_t q0 = s.q_head_begin * hd, q1 = (s.q_head_begin + s.q_heads) * hd;
  const std::int64_t k0 = s.kv_head_begin * hd, k1 = (s.kv_head_begin + s.kv_heads) * hd;
  const std::int64_t f0 = s.ffn_begin, f1 = s.ffn_begin + s.ffn;
  const std::int64_t QH = static_cast<std::int64_t>(c.num_attention_heads) * hd;
  const std::int64_t KH = static_cast<std::int64_t>(c.num_key_value_heads) * hd;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  auto vec = [&](const std::string& name, std::int64_t n) { return WeightSlice{p + name, {n}, 0, n, 0, 1}; };
  LayerWeightSlices L;
  L.input_norm = {vec("input_layernorm.weight", H)};
  L.post_norm = {vec("post_attention_layernorm.weight", H)};
  L.qkv = {{p + "self_attn.q_proj.weight", {QH, H}, q0, q1, 0, H},
           {p + "self_attn.k_proj.weight", {KH, H}, k0, k1, 0, H},
           {p + "self_attn.v_proj.weight", {KH, H}, k0, k1, 0, H}};
  if (c.attention_bias)
    L.qkv_bias = {{p + "self_attn.q_proj.bias", {QH}, q0, q1, 0, 1},
                  {p + "self_attn.k_proj.bias", {KH}, k0, k1, 0, 1},
                  {p + "self_attn.v_proj.bias", {KH}, k0, k1, 0, 1}};
  if (c.qk_norm) {
    L.q_norm = {vec("self_attn.q_norm.weight", hd)};
    L.k_norm = {vec("self_attn.k_norm.weight", hd)};
  }
  L.o = {{p + "self_attn.o_proj.weight", {H, QH}, 0, H, q0, q1}};
  L.gate_up = {{p + "mlp.gate_proj.weight", {I, H}, f0, f1, 0, H}, {p + "mlp.up_proj.weight", {I, H}, f0, f1, 0, H}};
  L.down = {{p + "mlp.down_proj.weight", {H, I}, 0, H, f0, f1}};
  return L;
}

template <HalfFloat W>
LayerWeights<W> read_layer_weights(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& s, int l) {
  const LayerWeightSlices from = layer_weight_slices(c, s, l);
  LayerWeights<W> L;
  L.input_norm = read_stacked<W>(w, from.input_norm);
  L.post_norm = read_stacked<W>(w, from.post_norm);
  L.qkv = read_stacked<W>(w, from.qkv);
  L.qkv_bias = read_stacked<W>(w, from.qkv_bias);
  L.q_norm = read_stacked<W>(w, from.q_norm);
  L.k_norm = read_stacked<W>(w, from.k_norm);
  L.o = read_stacked<W>(w, from.o);
  L.gate_up = read_stacked<W>(w, from.gate_up);
  L.down = read_stacked<W>(w, from.down);
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

EdgeWeightSlices edge_weight_slices(const ModelConfig& c, const TensorParallelSlice& s, bool first, bool last) {
  const std::int64_t H = c.hidden_size, V = c.vocab_size;
  const std::int64_t v0 = s.vocab_begin, v1 = s.vocab_begin + s.vocab_rows;
  const WeightSlice embed{"model.embed_tokens.weight", {V, H}, v0, v1, 0, H};
  EdgeWeightSlices e;
  if (first) e.embed = {embed};
  if (last) {
    e.final_norm = {{"model.norm.weight", {H}, 0, H, 0, 1}};
    e.lm_head = {c.tie_word_embeddings ? embed : WeightSlice{"lm_head.weight", {V, H}, v0, v1, 0, H}};
  }
  return e;
}

template <HalfFloat W>
StageEdgeWeights<W> read_edge_weights(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& s,
                                      bool first, bool last) {
  const EdgeWeightSlices from = edge_weight_slices(c, s, first, last);
  StageEdgeWeights<W> e;
  e.embed = read_stacked<W>(w, from.embed);
  e.final_norm = read_stacked<W>(w, from.final_norm);
  // A tied lm_head on the first stage is a copy of the embedding just read (a stage keeps its own).
  e.lm_head = last && first && c.tie_word_embeddings ? e.embed : read_stacked<W>(w, from.lm_head);
  return e;
}

// The model runs in one of these (weight_type.h).
#define LOCKSTEP_LAYER_WEIGHTS(W)                                                                                   \
  template std::vector<W> read_stacked<W>(const WeightSource&, const StackedSlices&);                              \
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
