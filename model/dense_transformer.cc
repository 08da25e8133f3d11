// DenseTransformer (see dense_transformer.h).
#include "model/dense_transformer.h"

#include <chrono>
#include <cmath>
#include <string>

#include "kernels/dense_ops.h"
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
  s.vocab_padded = (c.vocab_size + n - 1) / n * n;
  s.vocab_rows = s.vocab_padded / n;
  s.vocab_begin = r * s.vocab_rows;
  return s;
}

struct DenseTransformer::Layer {
  std::vector<bf16> input_norm, post_norm;
  std::vector<bf16> q, k, v, q_bias, k_bias, v_bias, o;  // o: [hidden, q_heads*head_dim]
  std::vector<bf16> gate, up, down;                      // down: [hidden, ffn]
  std::vector<float> k_cache, v_cache;
};

DenseTransformer::DenseTransformer(const ModelConfig& c, const WeightSource& w, Collectives& tp,
                                   Collectives& pp, const LayerRange& layers, int num_kv_blocks, int block_size)
    : config_(c),
      slice_(TensorParallelSlice::make(c, tp.rank(), tp.size())),
      tp_(tp),
      pp_(pp),
      layers_(layers),
      num_kv_blocks_(num_kv_blocks),
      block_size_(block_size),
      inv_freq_(rope_inverse_frequencies(c)) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const std::int64_t H = c.hidden_size, hd = c.head_dim, V = c.vocab_size;
  const bool first = pp.rank() == 0, last = pp.rank() == pp.size() - 1;
  const TensorParallelSlice& s = slice_;
  const std::int64_t v0 = s.vocab_begin, v1 = s.vocab_begin + s.vocab_rows;
  if (first || (last && c.tie_word_embeddings))
    embed_ = w.read("model.embed_tokens.weight", {V, H}, v0, v1, 0, H);
  if (last) {
    final_norm_ = w.read_all("model.norm.weight", {H});
    lm_head_ = c.tie_word_embeddings ? embed_ : w.read("lm_head.weight", {V, H}, v0, v1, 0, H);
  }
  if (!first) embed_.clear();  // only stage 0 embeds; a tied lm_head keeps its own copy
  const std::int64_t q0 = s.q_head_begin * hd, q1 = (s.q_head_begin + s.q_heads) * hd;
  const std::int64_t k0 = s.kv_head_begin * hd, k1 = (s.kv_head_begin + s.kv_heads) * hd;
  const std::int64_t f0 = s.ffn_begin, f1 = s.ffn_begin + s.ffn;
  const std::int64_t QH = static_cast<std::int64_t>(c.num_attention_heads) * hd;
  const std::int64_t KH = static_cast<std::int64_t>(c.num_key_value_heads) * hd;
  const std::int64_t I = c.intermediate_size;
  const std::int64_t cache = static_cast<std::int64_t>(num_kv_blocks) * block_size * s.kv_heads * hd;
  for (int l = layers.begin; l < layers.end; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto L = std::make_unique<Layer>();
    L->input_norm = w.read_all(p + "input_layernorm.weight", {H});
    L->post_norm = w.read_all(p + "post_attention_layernorm.weight", {H});
    L->q = w.read(p + "self_attn.q_proj.weight", {QH, H}, q0, q1, 0, H);
    L->k = w.read(p + "self_attn.k_proj.weight", {KH, H}, k0, k1, 0, H);
    L->v = w.read(p + "self_attn.v_proj.weight", {KH, H}, k0, k1, 0, H);
    if (c.attention_bias) {
      L->q_bias = w.read(p + "self_attn.q_proj.bias", {QH}, q0, q1, 0, 1);
      L->k_bias = w.read(p + "self_attn.k_proj.bias", {KH}, k0, k1, 0, 1);
      L->v_bias = w.read(p + "self_attn.v_proj.bias", {KH}, k0, k1, 0, 1);
    }
    L->o = w.read(p + "self_attn.o_proj.weight", {H, QH}, 0, H, q0, q1);
    L->gate = w.read(p + "mlp.gate_proj.weight", {I, H}, f0, f1, 0, H);
    L->up = w.read(p + "mlp.up_proj.weight", {I, H}, f0, f1, 0, H);
    L->down = w.read(p + "mlp.down_proj.weight", {H, I}, 0, H, f0, f1);
    L->k_cache.assign(cache, 0.0f);
    L->v_cache.assign(cache, 0.0f);
    layer_.push_back(std::move(L));
    const double sec = std::chrono::duration<double>(Clock::now() - start).count();
    if (tp.rank() == 0)
      LS_INFO("loading weights, stage " << pp.rank() << ": layer " << (l - layers.begin + 1) << "/" << layers.size()
              << ", " << w.bytes_read() / 1e6 << " MB, " << (sec > 0 ? w.bytes_read() / 1e9 / sec : 0.0) << " GB/s");
  }
}

DenseTransformer::~DenseTransformer() = default;

void DenseTransformer::embed(const ForwardBatch& b, std::vector<float>& h) {
  const std::int64_t T = b.token_ids.size(), H = config_.hidden_size;
  h.assign(T * H, 0.0f);
  for (std::int64_t t = 0; t < T; ++t) {
    const int id = b.token_ids[t];
    const int local = id - slice_.vocab_begin;
    if (local < 0 || local >= slice_.vocab_rows) continue;  // another rank's rows (or padding)
    for (std::int64_t i = 0; i < H; ++i) h[t * H + i] = bf16_to_float(embed_[local * H + i]);
  }
  if (tp_.size() > 1) tp_.all_reduce(h.data(), h.data(), h.size(), DType::F32, ReduceOp::Sum);
}

void DenseTransformer::attention(Layer& L, const ForwardBatch& b, const std::vector<float>& x, std::vector<float>& out) {
  const std::int64_t T = b.token_ids.size(), H = config_.hidden_size, hd = config_.head_dim;
  const std::int64_t qh = slice_.q_heads, kvh = slice_.kv_heads;
  std::vector<float> q(T * qh * hd), k(T * kvh * hd), v(T * kvh * hd), att(T * qh * hd);
  cpu::linear(x.data(), T, H, L.q.data(), qh * hd, L.q_bias.empty() ? nullptr : L.q_bias.data(), q.data());
  cpu::linear(x.data(), T, H, L.k.data(), kvh * hd, L.k_bias.empty() ? nullptr : L.k_bias.data(), k.data());
  cpu::linear(x.data(), T, H, L.v.data(), kvh * hd, L.v_bias.empty() ? nullptr : L.v_bias.data(), v.data());
  cpu::apply_rope(q.data(), T, qh, hd, b.positions.data(), inv_freq_.data());
  cpu::apply_rope(k.data(), T, kvh, hd, b.positions.data(), inv_freq_.data());
  std::vector<std::int64_t> slots(T);
  for (std::int64_t t = 0; t < T; ++t) {
    const int p = b.positions[t];
    const int block = b.block_tables[static_cast<std::int64_t>(b.seq_of_token[t]) * b.max_blocks + p / block_size_];
    LS_CHECK(block >= 0 && block < num_kv_blocks_, "token " << t << " maps to KV block " << block);
    slots[t] = static_cast<std::int64_t>(block) * block_size_ + p % block_size_;
  }
  cpu::kv_cache_write(L.k_cache.data(), L.v_cache.data(), k.data(), v.data(), T, kvh, hd, slots.data());
  cpu::paged_attention(q.data(), L.k_cache.data(), L.v_cache.data(), T, qh, kvh, hd, block_size_,
                       b.seq_of_token.data(), b.positions.data(), b.block_tables.data(), b.max_blocks,
                       1.0f / std::sqrt(static_cast<float>(hd)), att.data());
  out.resize(T * H);
  cpu::linear(att.data(), T, qh * hd, L.o.data(), H, nullptr, out.data());
  if (tp_.size() > 1) tp_.all_reduce(out.data(), out.data(), out.size(), DType::F32, ReduceOp::Sum);
}

void DenseTransformer::mlp(Layer& L, const std::vector<float>& x, std::int64_t T, std::vector<float>& out) {
  const std::int64_t H = config_.hidden_size, F = slice_.ffn;
  std::vector<float> gate(T * F), up(T * F);
  cpu::linear(x.data(), T, H, L.gate.data(), F, nullptr, gate.data());
  cpu::linear(x.data(), T, H, L.up.data(), F, nullptr, up.data());
  cpu::silu_mul(gate.data(), up.data(), T * F, gate.data());
  out.resize(T * H);
  cpu::linear(gate.data(), T, F, L.down.data(), H, nullptr, out.data());
  if (tp_.size() > 1) tp_.all_reduce(out.data(), out.data(), out.size(), DType::F32, ReduceOp::Sum);
}

std::vector<float> DenseTransformer::logits(const std::vector<float>& h, const ForwardBatch& b) {
  const std::int64_t H = config_.hidden_size, R = b.logit_rows.size(), VR = slice_.vocab_rows;
  std::vector<float> rows(R * H);
  for (std::int64_t i = 0; i < R; ++i)
    std::copy(h.begin() + b.logit_rows[i] * H, h.begin() + (b.logit_rows[i] + 1) * H, rows.begin() + i * H);
  cpu::rms_norm(rows.data(), R, H, final_norm_.data(), static_cast<float>(config_.rms_norm_eps), rows.data());
  std::vector<float> local(R * VR);
  cpu::linear(rows.data(), R, H, lm_head_.data(), VR, nullptr, local.data());
  std::vector<float> gathered(tp_.size() * R * VR);
  if (tp_.size() > 1) tp_.all_gather(local.data(), gathered.data(), local.size(), DType::F32);
  else gathered = local;
  // gathered is [tp, R, VR]; logits are [R, vocab] with rank r's rows at r * VR.
  const std::int64_t V = config_.vocab_size;
  std::vector<float> out(R * V);
  for (int r = 0; r < tp_.size(); ++r)
    for (std::int64_t i = 0; i < R; ++i)
      for (std::int64_t j = 0; j < VR; ++j) {
        const std::int64_t col = r * VR + j;
        if (col < V) out[i * V + col] = gathered[(r * R + i) * VR + j];
      }
  return out;
}

std::vector<float> DenseTransformer::forward(const ForwardBatch& b) {
  const std::int64_t T = b.token_ids.size(), H = config_.hidden_size;
  std::vector<float> h;
  if (pp_.rank() == 0) {
    embed(b, h);
  } else {
    h.resize(T * H);
    pp_.recv(h.data(), h.size(), DType::F32, pp_.rank() - 1);
    pp_.synchronize();
  }
  std::vector<float> x(T * H), out;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  for (auto& L : layer_) {
    cpu::rms_norm(h.data(), T, H, L->input_norm.data(), eps, x.data());
    attention(*L, b, x, out);
    for (std::int64_t i = 0; i < T * H; ++i) h[i] += out[i];
    cpu::rms_norm(h.data(), T, H, L->post_norm.data(), eps, x.data());
    mlp(*L, x, T, out);
    for (std::int64_t i = 0; i < T * H; ++i) h[i] += out[i];
  }
  if (pp_.rank() < pp_.size() - 1) {
    pp_.send(h.data(), h.size(), DType::F32, pp_.rank() + 1);
    pp_.synchronize();
    return {};
  }
  return logits(h, b);
}

}  // namespace lockstep
