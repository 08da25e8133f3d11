// The deepseek_v3 CUDA stage (see cuda_deepseek_v3_transformer.h). Mirrors DeepseekV3Transformer
// step for step; the linears round their inputs to W, as the dense CUDA stage's do.
#include "model/cuda_deepseek_v3_transformer.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemv.h"
#include "kernels/dense_ops.h"
#include "kernels/fp8_weights.h"
#include "kernels/latent_attention.h"
#include "kernels/log.h"
#include "kernels/moe_experts.h"
#include "kernels/pinned_uploader.h"
#include "model/deepseek_v3_weights.h"
#include "model/fp8_weight_slices.h"
#include "model/gpu_stage_frame.h"
#include "model/weight_type.h"

namespace lockstep {
namespace {

// transformers' DeepseekV3RMSNorm default for q_a_layernorm and kv_a_layernorm (see the CPU stage).
constexpr float kLatentNormEps = 1e-6f;

template <typename T>
T* as(DeviceBuffer& b) {
  return static_cast<T*>(b.data());
}
template <typename T>
const T* as(const DeviceBuffer& b) {
  return b.bytes() ? static_cast<const T*>(b.data()) : nullptr;
}

struct Layer {
  // q_kv_a: q_a_proj (or q_proj, without a q low rank: then q_b is empty) and kv_a_proj stacked.
  // Both read the layer's normed input, so a one-token step runs them as one GEMV; bigger steps
  // run each part (their outputs then stay two dense matrices).
  DeviceBuffer input_norm, post_norm, q_kv_a, q_a_norm, q_b, kv_a_norm, kv_b, o, gate_up, down;
  // The MoE: the router, its correction bias (fp32), the routed experts' weights stacked
  // ([experts, 2 expert_ffn, hidden] and [experts, hidden, expert_ffn]: a kernel picks an expert
  // by index), and the shared experts as one MLP.
  DeviceBuffer router, correction_bias, experts_gate_up, experts_down, shared_gate_up, shared_down;
  // The routed experts kept in block fp8 as the checkpoint stores them (then the two above are
  // empty): the same stacking, codes and scales (kernels/fp8_weights.h).
  Fp8DeviceWeight experts_gate_up_fp8, experts_down_fp8;
  DeviceBuffer cache;
  bool fp8_experts() const { return experts_gate_up_fp8.values.bytes() > 0; }
};

// The layers' step buffers besides the frame's.
struct DeepseekBuffers {
  DeviceBuffer qa, qa_normed, q, kv, q_latent, o_latent, att, gate_up, act;
  // The MoE's: router logits, each token's experts and weights, the (token, expert) pairs grouped
  // by expert (ExpertGroups), the pairs' inputs, activations and outputs in that order.
  DeviceBuffer logits, expert_ids, expert_weights, offsets, active, count, token, position;
  DeviceBuffer sorted_x, sorted_act, sorted_y;
  DeviceBuffer expert_weights_w;  // an fp8 expert's gate|up and down dequantized (GEMM steps)
};

template <HalfFloat W>
class CudaDeepseekV3Stage final : public GpuStageFrame<W> {
 public:
  CudaDeepseekV3Stage(const ModelConfig& c, const WeightSource& w, PinnedUploader& uploader, Collectives& tp,
                      Collectives& pp, const LayerRange& layers, int gpu, int block_size, bool cuda_graphs)
      : Frame(c, w, uploader, tp, pp, layers, gpu, block_size, cuda_graphs),
        rope_factor_(static_cast<float>(rope_attention_factor(c))),
        scale_(attention_softmax_scale(c)),
        grouped_experts_(c.hidden_size % 8 == 0 && slice_.expert_ffn % 8 == 0) {
    if (c.mla.cache_width() > cuda::kMaxLatentWidth)
      throw CheckpointError("kv_lora_rank + qk_rope_head_dim " + std::to_string(c.mla.cache_width()) +
                            " is more than the GPU's latent attention takes (" +
                            std::to_string(cuda::kMaxLatentWidth) + ")");
    if (c.moe.n_routed_experts > cuda::kMaxRoutedExperts)
      throw CheckpointError("n_routed_experts " + std::to_string(c.moe.n_routed_experts) +
                            " is more than the GPU's routing takes (" + std::to_string(cuda::kMaxRoutedExperts) + ")");
    const LoadProgress progress(w, tp.rank(), pp.rank(), " to GPU " + std::to_string(gpu));
    auto upload = [&](const StackedSlices& slices) { return upload_weight(uploader, w, slices, dtype_of<W>); };
    int moe_layers = 0;
    for (int l = layers.begin; l < layers.end; ++l) {
      const DeepseekV3LayerSlices s = deepseek_v3_layer_slices(c, slice_, l);
      auto L = std::make_unique<Layer>();
      L->input_norm = upload(s.input_norm);
      L->post_norm = upload(s.post_norm);
      StackedSlices q_kv_a = s.q_a.empty() ? s.q_b : s.q_a;
      q_kv_a.insert(q_kv_a.end(), s.kv_a.begin(), s.kv_a.end());
      L->q_kv_a = upload(q_kv_a);
      L->q_a_norm = upload(s.q_a_norm);
      if (!s.q_a.empty()) L->q_b = upload(s.q_b);
      L->kv_a_norm = upload(s.kv_a_norm);
      L->kv_b = upload(s.kv_b);
      L->o = upload(s.o);
      L->gate_up = upload(s.gate_up);
      L->down = upload(s.down);
      L->router = upload(s.router);
      if (!s.router.empty()) {
        const WeightSlice& b = s.correction_bias;
        const std::vector<float> bias = w.read<float>(b.name, b.shape, b.r0, b.r1, b.c0, b.c1);
        L->correction_bias = DeviceBuffer(DeviceKind::Cuda, bias.size() * sizeof(float));
        L->correction_bias.copy_from_host(bias.data(), bias.size() * sizeof(float));
      }
      StackedSlices gate_up, down;
      for (const StackedSlices& e : s.expert_gate_up) gate_up.insert(gate_up.end(), e.begin(), e.end());
      for (const StackedSlices& e : s.expert_down) down.insert(down.end(), e.begin(), e.end());
      moe_layers += gate_up.empty() ? 0 : 1;
      if (fp8_experts_fit(w, gate_up, down)) {
        L->experts_gate_up_fp8 = upload_fp8_weight(uploader, w, gate_up);
        L->experts_down_fp8 = upload_fp8_weight(uploader, w, down);
        fp8_layers_ += 1;
      } else {
        L->experts_gate_up = upload(gate_up);
        L->experts_down = upload(down);
      }
      L->shared_gate_up = upload(s.shared_gate_up);
      L->shared_down = upload(s.shared_down);
      layer_.push_back(std::move(L));
      progress.layer_done(l - layers.begin + 1, layers.size());
    }
    if (c.fp8_weights && fp8_layers_ < moe_layers)  // the memory a user planned for fp8 is not what they get
      LS_WARN("GPU " << gpu << ": the routed experts of " << moe_layers - fp8_layers_ << " of " << moe_layers
                     << " MoE layers are dequantized to " << (dtype_of<W> == DType::F16 ? "float16" : "bfloat16")
                     << " (twice the memory of fp8): they are not stored as block fp8, or this rank's "
                     << slice_.expert_ffn << " of each expert's columns are not whole " << c.fp8_block_rows << " x "
                     << c.fp8_block_cols << " blocks (or widths a multiple of 16); another --tensor-parallel-size "
                        "may keep them fp8");
    if (fp8_layers_ > 0)
      LS_INFO("GPU " << gpu << ": the routed experts of " << fp8_layers_ << " of " << layer_.size()
                     << " layers kept in block fp8 as the checkpoint stores them (" << c.fp8_block_rows << " x "
                     << c.fp8_block_cols << " blocks)");
  }
  ~CudaDeepseekV3Stage() override { ctx_.synchronize(); }  // the layers' buffers go before the frame's

  std::uint64_t kv_block_bytes() const override {
    return static_cast<std::uint64_t>(block_size_) * config_.mla.cache_width() * sizeof(W) *
           std::max<std::size_t>(layer_.size(), 1);
  }
  void allocate_kv_cache(int num_blocks) override {
    this->set_num_kv_blocks(num_blocks);
    const std::size_t bytes = static_cast<std::size_t>(num_blocks) * block_size_ * config_.mla.cache_width() * sizeof(W);
    for (auto& L : layer_) {
      L->cache = DeviceBuffer(DeviceKind::Cuda, bytes);
      L->cache.fill_bytes(0);
    }
  }
  // Every buffer run_layers grows, at its largest (an expert may get every token of a step), and
  // the frame's.
  void reserve_workspace(int max_tokens, int max_rows) override {
    StepWorkspace& w = ws_;
    DeepseekBuffers& b = buf_;
    const LatentAttentionConfig& a = config_.mla;
    const MixtureOfExpertsConfig& m = config_.moe;
    const std::int64_t T = max_tokens, H = config_.hidden_size, heads = slice_.q_heads;
    const std::int64_t F = std::max(slice_.ffn, slice_.shared_ffn);
    w.reserve<float>(b.qa, std::max<std::int64_t>(T * a.q_lora_rank, q_rows() + a.cache_width()));
    w.reserve<W>(b.qa_normed, T * a.q_lora_rank);
    w.reserve<float>(b.q, T * heads * a.qk_head_dim());
    w.reserve<float>(b.kv, T * a.cache_width());
    w.reserve<float>(b.q_latent, T * heads * a.kv_lora_rank);
    w.reserve<float>(b.o_latent, T * heads * a.kv_lora_rank);
    w.reserve<float>(b.att, T * heads * a.v_head_dim);
    w.reserve<W>(b.gate_up, T * 2 * F);
    w.reserve<W>(b.act, T * F);
    if (m.n_routed_experts > 0) {
      const std::int64_t E = m.n_routed_experts, P = T * m.num_experts_per_tok, EF = slice_.expert_ffn;
      w.reserve<float>(b.logits, T * E);
      w.reserve<int>(b.expert_ids, P);
      w.reserve<float>(b.expert_weights, P);
      w.reserve<int>(b.offsets, E + 1);
      w.reserve<int>(b.active, E);
      w.reserve<int>(b.count, 1);
      w.reserve<int>(b.token, P);
      w.reserve<int>(b.position, P);
      w.reserve<W>(b.sorted_x, P * H);
      w.reserve<W>(b.sorted_act, P * EF + T * 2 * EF);  // and an expert's gate|up (GEMM steps)
      w.reserve<float>(b.sorted_y, P * H);
      if (fp8_layers_ > 0) w.reserve<W>(b.expert_weights_w, 3 * EF * H);
    }
    // The context's scratch: what linear() rounds o_proj's fp32 input into.
    this->reserve_frame_workspace(T, max_rows, static_cast<std::size_t>(T * heads * a.v_head_dim) * sizeof(W));
  }

 private:
  using Frame = GpuStageFrame<W>;
  using Frame::config_, Frame::slice_, Frame::tp_, Frame::pp_, Frame::layers_, Frame::block_size_, Frame::ctx_,
      Frame::ws_;

  // Decode-sized steps route and run their experts on the GPU alone (grouped GEMVs); bigger
  // ones wait for the experts' token counts (GEMMs per expert).
  bool grouped(std::int64_t T) const { return grouped_experts_ && T <= kMaxGraphTokens; }

  // Whether this rank's slices of a layer's routed experts can stay in block fp8 on the GPU
  // (--dtype's 16 bits otherwise, dequantized as they load): stored so, cut on block boundaries
  // (fp8_stacked_blocks), and of the shapes the fp8 grouped GEMVs take (widths multiples of 16, a
  // 16-byte load's codes within one block, features a whole number of block rows).
  bool fp8_experts_fit(const WeightSource& w, const StackedSlices& gate_up, const StackedSlices& down) const {
    const std::int64_t H = config_.hidden_size, EF = slice_.expert_ffn;
    const Fp8Blocks b = fp8_stacked_blocks(w, gate_up), b_down = fp8_stacked_blocks(w, down);
    return grouped_experts_ && b.stored() && b_down.rows == b.rows && b_down.cols == b.cols && H % 16 == 0 &&
           EF % 16 == 0 && b.cols % 16 == 0 && H % b.rows == 0 && EF % b.rows == 0;
  }
  // The rows of q_kv_a's q part: q_a_proj's, or this rank's heads' of q_proj.
  std::int64_t q_rows() const {
    const LatentAttentionConfig& a = config_.mla;
    return a.q_lora_rank > 0 ? a.q_lora_rank : slice_.q_heads * a.qk_head_dim();
  }
  bool graph_safe(std::int64_t T) const override { return config_.moe.n_routed_experts == 0 || grouped(T); }

  void run_layers(std::int64_t T, float* h, W* x, float* out) override {
    const std::int64_t H = config_.hidden_size;
    const float eps = static_cast<float>(config_.rms_norm_eps);
    for (std::size_t i = 0; i < layer_.size(); ++i) {
      Layer& L = *layer_[i];
      if (i == 0) cuda::rms_norm(ctx_, h, T, H, as<W>(L.input_norm), eps, x);
      else cuda::add_rms_norm(ctx_, h, out, T, H, as<W>(L.input_norm), eps, x);  // h += previous mlp
      attention(L, T, x, out);
      cuda::add_rms_norm(ctx_, h, out, T, H, as<W>(L.post_norm), eps, x);  // h += attention
      if (config_.moe.is_moe_layer(layers_.begin + static_cast<int>(i))) {
        moe(L, T, x, out);
      } else {
        mlp(as<W>(L.gate_up), as<W>(L.down), slice_.ffn, T, x, out);
      }
      if (tp_.size() > 1) tp_.all_reduce(out, out, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
    }
    if (!layer_.empty()) {
      const float one = 1.0f;
      LS_CUBLAS_CHECK(cublasSaxpy(ctx_.blas(), static_cast<int>(T * H), &one, out, 1, h, 1));  // h += last mlp
    }
  }

  // out = this rank's heads' part of o_proj, all-reduced.
  void attention(Layer& L, std::int64_t T, const W* x, float* out) {
    StepWorkspace& w = ws_;
    DeepseekBuffers& b = buf_;
    const LatentAttentionConfig& a = config_.mla;
    const std::int64_t H = config_.hidden_size, heads = slice_.q_heads, qk = a.qk_head_dim();
    const std::int64_t nope = a.qk_nope_head_dim, rope = a.qk_rope_head_dim, kvr = a.kv_lora_rank, v = a.v_head_dim;
    const int* positions = this->positions();
    const bool q_lora = L.q_b.bytes() > 0;
    const std::int64_t q_rows = this->q_rows(), cw = a.cache_width();
    const W* q_w = as<W>(L.q_kv_a);
    float* q = w.grow<float>(b.q, T * heads * qk);
    float* kv = w.grow<float>(b.kv, T * cw);
    // b.qa: q_a's output, and a one-token step's fused output row [q part | kv].
    float* staged = w.grow<float>(b.qa, std::max(T * a.q_lora_rank, q_rows + cw));
    float* q_part = q_lora ? staged : q;  // what q_w's q rows write: q_a's output, or q itself
    if (T == 1) {
      cuda::linear(ctx_, x, T, H, q_w, q_rows + cw, nullptr, staged);
      q_part = staged;
      kv = staged + q_rows;
      if (!q_lora) q = staged;
    } else {
      cuda::linear(ctx_, x, T, H, q_w, q_rows, nullptr, q_part);
      cuda::linear(ctx_, x, T, H, q_w + q_rows * H, cw, nullptr, kv);
    }
    if (q_lora) {
      W* qa_normed = w.grow<W>(b.qa_normed, T * a.q_lora_rank);
      cuda::rms_norm(ctx_, q_part, T, a.q_lora_rank, as<W>(L.q_a_norm), kLatentNormEps, qa_normed);
      cuda::linear(ctx_, qa_normed, T, a.q_lora_rank, as<W>(L.q_b), heads * qk, nullptr, q);
    }
    cuda::mla_cache_write(ctx_, kv, T, kvr, rope, as<W>(L.kv_a_norm), kLatentNormEps, positions, this->inv_freq(),
                          rope_factor_, a.rope_interleave, this->kv_slots(), as<W>(L.cache));
    cuda::rope_pairs(ctx_, q + nope, T, heads, heads * qk, qk, rope, positions, this->inv_freq(), rope_factor_,
                     a.rope_interleave);
    float* q_latent = w.grow<float>(b.q_latent, T * heads * kvr);
    float* o_latent = w.grow<float>(b.o_latent, T * heads * kvr);
    float* att = w.grow<float>(b.att, T * heads * v);
    cuda::mla_absorb_q(ctx_, q, T, heads, heads * qk, qk, as<W>(L.kv_b), nope, v, kvr, q_latent);
    cuda::latent_attention(ctx_, q_latent, q + nope, heads * qk, qk, as<W>(L.cache), T, heads, kvr, rope, block_size_,
                           this->seq_of(), positions, this->block_tables(), this->max_blocks_, scale_, o_latent,
                           this->max_context_);
    cuda::mla_expand_v(ctx_, o_latent, T, heads, as<W>(L.kv_b), nope, v, kvr, att);
    cuda::linear(ctx_, att, T, heads * v, as<W>(L.o), H, nullptr, out);
    if (tp_.size() > 1) tp_.all_reduce(out, out, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
  }

  // out = the SwiGLU MLP of ffn columns over x [T, hidden].
  void mlp(const W* gate_up, const W* down, std::int64_t ffn, std::int64_t T, const W* x, float* out) {
    StepWorkspace& w = ws_;
    W* both = w.grow<W>(buf_.gate_up, T * 2 * ffn);
    W* act = w.grow<W>(buf_.act, T * ffn);
    cuda::linear_silu_mul(ctx_, x, T, config_.hidden_size, gate_up, ffn, both, act);
    cuda::linear(ctx_, act, T, ffn, down, config_.hidden_size, nullptr, out);
  }

  // out = the shared experts plus each token's routed experts times their weights (this rank's
  // columns; the caller all-reduces). The tokens' (token, expert) pairs are grouped by expert
  // on the GPU; each expert then runs once over its rows (a one-token step: each pair alone).
  void moe(Layer& L, std::int64_t T, const W* x, float* out) {
    StepWorkspace& w = ws_;
    DeepseekBuffers& b = buf_;
    const MixtureOfExpertsConfig& m = config_.moe;
    const std::int64_t H = config_.hidden_size, E = m.n_routed_experts, K = m.num_experts_per_tok, P = T * K;
    const std::int64_t EF = slice_.expert_ffn;
    float* logits = w.grow<float>(b.logits, T * E);
    int* ids = w.grow<int>(b.expert_ids, P);
    float* weights = w.grow<float>(b.expert_weights, P);
    cuda::linear(ctx_, x, T, H, as<W>(L.router), E, nullptr, logits);
    const cpu::ExpertRouting routing{static_cast<int>(E), m.n_group, m.topk_group, static_cast<int>(K),
                                     m.norm_topk_prob, static_cast<float>(m.routed_scaling_factor)};
    cuda::route_experts(ctx_, logits, T, as<float>(L.correction_bias), routing, ids, weights);
    const cuda::ExpertGroups groups{w.grow<int>(b.offsets, E + 1), w.grow<int>(b.active, E), w.grow<int>(b.count, 1),
                                    w.grow<int>(b.token, P), w.grow<int>(b.position, P)};
    // One token: its top_k experts differ, so each pair runs as its own slot, ungrouped.
    const bool one_pair_a_slot = T == 1 && grouped(T);
    if (!one_pair_a_slot) cuda::group_by_expert(ctx_, ids, P, K, static_cast<int>(E), groups);
    const cuda::ExpertRows by_token = one_pair_a_slot ? cuda::ExpertRows::pairs(ids, P, static_cast<int>(K))
                                                      : cuda::ExpertRows::grouped(groups.offsets, groups.active,
                                                                                  groups.count, std::min(E, P));
    const cuda::ExpertRows by_pair = one_pair_a_slot ? cuda::ExpertRows::pairs(ids, P, 1) : by_token;
    const int* token = one_pair_a_slot ? nullptr : groups.token;  // the gate|up reads each pair's token row
    W* sorted_act = w.grow<W>(b.sorted_act, P * EF + T * 2 * EF);
    float* sorted_y = w.grow<float>(b.sorted_y, P * H);
    const Fp8DeviceWeight &gu8 = L.experts_gate_up_fp8, &dn8 = L.experts_down_fp8;
    if (grouped(T) && L.fp8_experts()) {
      cuda::grouped_gemv_silu_mul_fp8(ctx_, x, token, P, H, as<fp8_e4m3>(gu8.values), as<float>(gu8.scales),
                                      gu8.block_rows, gu8.block_cols, EF, by_token, sorted_act);
      cuda::grouped_gemv_fp8(ctx_, sorted_act, static_cast<const int*>(nullptr), P, EF, as<fp8_e4m3>(dn8.values),
                             as<float>(dn8.scales), dn8.block_rows, dn8.block_cols, H, by_pair, sorted_y);
    } else if (grouped(T)) {
      cuda::grouped_gemv_silu_mul(ctx_, x, token, P, H, as<W>(L.experts_gate_up), EF, by_token, sorted_act);
      cuda::grouped_gemv(ctx_, sorted_act, static_cast<const int*>(nullptr), P, EF, as<W>(L.experts_down), H,
                         by_pair, sorted_y);
    } else {
      // The experts' row counts to the host (one wait a layer), then a GEMM pair per expert with rows.
      W* sorted_x = w.grow<W>(b.sorted_x, P * H);
      cuda::gather_rows(ctx_, x, groups.token, P, H, sorted_x);
      offsets_.resize(E + 1);
      LS_CUDA_CHECK(cudaMemcpyAsync(offsets_.data(), groups.offsets, (E + 1) * sizeof(int), cudaMemcpyDeviceToHost,
                                    ctx_.stream()));
      ctx_.synchronize();
      W* gate_up = sorted_act + P * EF;  // linear_silu_mul's gate|up output (an expert has T rows at most)
      for (std::int64_t e = 0; e < E; ++e) {
        const std::int64_t first = offsets_[e], n = offsets_[e + 1] - first;
        if (n == 0) continue;
        const W* expert_gate_up = as<W>(L.experts_gate_up) + e * 2 * EF * H;
        const W* expert_down = as<W>(L.experts_down) + e * H * EF;
        if (L.fp8_experts()) {  // the expert dequantized into scratch for cuBLASLt's bf16 GEMMs
          W* dequantized = w.grow<W>(b.expert_weights_w, 3 * EF * H);
          const std::int64_t gu_scales = 2 * EF / gu8.block_rows * ((H + gu8.block_cols - 1) / gu8.block_cols);
          const std::int64_t dn_scales = H / dn8.block_rows * ((EF + dn8.block_cols - 1) / dn8.block_cols);
          cuda::dequantize_fp8_blocks(ctx_, as<fp8_e4m3>(gu8.values) + e * 2 * EF * H,
                                      as<float>(gu8.scales) + e * gu_scales, 2 * EF, H, gu8.block_rows,
                                      gu8.block_cols, dequantized);
          cuda::dequantize_fp8_blocks(ctx_, as<fp8_e4m3>(dn8.values) + e * H * EF, as<float>(dn8.scales) + e * dn_scales,
                                      H, EF, dn8.block_rows, dn8.block_cols, dequantized + 2 * EF * H);
          expert_gate_up = dequantized;
          expert_down = dequantized + 2 * EF * H;
        }
        W* act = sorted_act + first * EF;
        cuda::linear_silu_mul(ctx_, sorted_x + first * H, n, H, expert_gate_up, EF, gate_up, act);
        cuda::linear(ctx_, act, n, EF, expert_down, H, nullptr, sorted_y + first * H);
      }
    }
    if (m.n_shared_experts > 0) {
      mlp(as<W>(L.shared_gate_up), as<W>(L.shared_down), slice_.shared_ffn, T, x, out);
    } else {
      LS_CUDA_CHECK(cudaMemsetAsync(out, 0, T * H * sizeof(float), ctx_.stream()));
    }
    cuda::combine_experts(ctx_, sorted_y, one_pair_a_slot ? nullptr : groups.position, weights, T, K, H, out);
  }

  float rope_factor_, scale_;
  int fp8_layers_ = 0;  // layers whose routed experts stay in block fp8
  bool grouped_experts_;  // the shapes the grouped GEMVs take (widths multiples of 8)
  std::vector<std::unique_ptr<Layer>> layer_;
  DeepseekBuffers buf_;
  std::vector<int> offsets_;  // the host's copy of the experts' row offsets (steps too big for grouped GEMVs)
};

}  // namespace

std::unique_ptr<GpuStage> make_cuda_deepseek_v3_stage(const ModelConfig& c, const WeightSource& w, Collectives& tp,
                                                      Collectives& pp, const LayerRange& layers, int gpu,
                                                      int block_size, bool cuda_graphs) {
  return with_weight_type(c.dtype, [&]<HalfFloat W>(W) -> std::unique_ptr<GpuStage> {
    PinnedUploader uploader;
    auto stage =
        std::make_unique<CudaDeepseekV3Stage<W>>(c, w, uploader, tp, pp, layers, gpu, block_size, cuda_graphs);
    uploader.finish();
    return stage;
  });
}

}  // namespace lockstep
