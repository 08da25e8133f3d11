// DenseTransformer (see dense_transformer.h).
#include "model/dense_transformer.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dense_ops.h"
#include "kernels/fatal.h"
#include "kernels/log.h"
#include "model/cpu_stage_edges.h"
#include "model/weight_type.h"

namespace lockstep {

template <HalfFloat W>
class DenseTransformer::StageIn final : public ForwardModel {
 public:
  StageIn(const ModelConfig& config, const WeightSource& weights, const TensorParallelSlice& slice, Collectives& tp,
          Collectives& pp, const LayerRange& layers, int num_kv_blocks, int block_size);

  std::span<const float> forward(const ForwardBatch& batch) override;
  const ModelConfig& config() const override { return config_; }
  int block_size() const override { return block_size_; }
  int num_kv_blocks() const override { return num_kv_blocks_; }

 private:
  struct Layer : LayerWeights<W> {
    std::vector<float> k_cache, v_cache;
  };
  void attention(Layer& layer, const ForwardBatch& b, const std::vector<float>& x, std::vector<float>& out);
  void mlp(Layer& layer, const std::vector<float>& x, std::int64_t tokens, std::vector<float>& out);

  ModelConfig config_;
  TensorParallelSlice slice_;
  Collectives& tp_;
  Collectives& pp_;
  LayerRange layers_;
  int num_kv_blocks_, block_size_;
  std::vector<float> inv_freq_;
  StageEdgeWeights<W> edge_;
  std::vector<std::unique_ptr<Layer>> layer_;
  std::vector<float> logits_;  // the last forward's, which it returns a view of
};

DenseTransformer::DenseTransformer(const ModelConfig& c, const WeightSource& w, Collectives& tp, Collectives& pp,
                                   const LayerRange& layers, int num_kv_blocks, int block_size)
    : slice_(TensorParallelSlice::make(c, tp.rank(), tp.size())),
      stage_(with_weight_type(c.dtype, [&]<HalfFloat W>(W) -> std::unique_ptr<ForwardModel> {
        return std::make_unique<StageIn<W>>(c, w, slice_, tp, pp, layers, num_kv_blocks, block_size);
      })) {}

DenseTransformer::~DenseTransformer() = default;

template <HalfFloat W>
DenseTransformer::StageIn<W>::StageIn(const ModelConfig& c, const WeightSource& w, const TensorParallelSlice& slice,
                                      Collectives& tp, Collectives& pp, const LayerRange& layers, int num_kv_blocks,
                                      int block_size)
    : config_(c),
      slice_(slice),
      tp_(tp),
      pp_(pp),
      layers_(layers),
      num_kv_blocks_(num_kv_blocks),
      block_size_(block_size),
      inv_freq_(rope_inverse_frequencies(c)) {
  const LoadProgress progress(w, tp.rank(), pp.rank(), "");
  edge_ = read_edge_weights<W>(c, w, slice_, pp.rank() == 0, pp.rank() == pp.size() - 1);
  const std::int64_t cache = static_cast<std::int64_t>(num_kv_blocks) * block_size * slice_.kv_heads * c.head_dim;
  LayerPrefetcher<W> prefetch(c, w, slice_, layers.begin, layers.end);
  for (int l = layers.begin; l < layers.end; ++l) {
    auto L = std::make_unique<Layer>();
    static_cast<LayerWeights<W>&>(*L) = prefetch.next();
    L->k_cache.assign(cache, 0.0f);
    L->v_cache.assign(cache, 0.0f);
    layer_.push_back(std::move(L));
    progress.layer_done(l - layers.begin + 1, layers.size());
  }
}

template <HalfFloat W>
void DenseTransformer::StageIn<W>::attention(Layer& L, const ForwardBatch& b, const std::vector<float>& x,
                                             std::vector<float>& out) {
  const std::int64_t T = b.token_ids.size(), H = config_.hidden_size, hd = config_.head_dim;
  const std::int64_t qh = slice_.q_heads, kvh = slice_.kv_heads;
  std::vector<float> qkv(T * (qh + 2 * kvh) * hd), q(T * qh * hd), att(T * qh * hd);
  cpu::linear(x.data(), T, H, L.qkv.data(), (qh + 2 * kvh) * hd, nullptr, qkv.data());
  if (config_.qk_norm)
    cpu::head_rms_norm(qkv.data(), T, qh, kvh, hd, L.q_norm.data(), L.k_norm.data(),
                       static_cast<float>(config_.rms_norm_eps));
  const std::vector<std::int64_t> slots = kv_cache_slots(b, block_size_, num_kv_blocks_);
  cpu::split_qkv_rope_cache<W>(qkv.data(), T, qh, kvh, hd, L.qkv_bias.empty() ? nullptr : L.qkv_bias.data(),
                               b.positions.data(), inv_freq_.data(), slots.data(), q.data(), L.k_cache.data(),
                               L.v_cache.data(), config_.kv_cache_dtype);
  cpu::paged_attention(q.data(), L.k_cache.data(), L.v_cache.data(), T, qh, kvh, hd, block_size_,
                       b.seq_of_token.data(), b.positions.data(), b.block_tables.data(), b.max_blocks,
                       attention_softmax_scale(config_), att.data());
  out.resize(T * H);
  cpu::linear(att.data(), T, qh * hd, L.o.data(), H, nullptr, out.data());
  if (tp_.size() > 1) tp_.all_reduce(out.data(), out.data(), out.size(), DType::F32, ReduceOp::Sum);
}

template <HalfFloat W>
void DenseTransformer::StageIn<W>::mlp(Layer& L, const std::vector<float>& x, std::int64_t T, std::vector<float>& out) {
  const std::int64_t H = config_.hidden_size;
  out.resize(T * H);
  cpu::swiglu_mlp(x.data(), T, H, L.gate_up.data(), L.down.data(), slice_.ffn, out.data());
  if (tp_.size() > 1) tp_.all_reduce(out.data(), out.data(), out.size(), DType::F32, ReduceOp::Sum);
}

template <HalfFloat W>
std::span<const float> DenseTransformer::StageIn<W>::forward(const ForwardBatch& b) {
  const std::int64_t T = b.token_ids.size(), H = config_.hidden_size;
  std::vector<float> h;
  cpu_stage_input(config_, slice_, edge_, tp_, pp_, b, h);
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
  if (!cpu_stage_output(config_, slice_, edge_, tp_, pp_, b, h, logits_)) return {};
  return logits_;
}

}  // namespace lockstep
