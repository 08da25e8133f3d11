// CudaDeepseekV3Transformer (see cuda_deepseek_v3_transformer.h). Mirrors DeepseekV3Transformer
// step for step; the linears round their inputs to W, as the dense CUDA stage's do.
#include "model/cuda_deepseek_v3_transformer.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/dense_ops.h"
#include "kernels/device_buffer.h"
#include "kernels/gpu_context.h"
#include "kernels/latent_attention.h"
#include "kernels/moe_routing.h"
#include "kernels/pinned_uploader.h"
#include "model/deepseek_v3_weights.h"
#include "model/weight_type.h"
#include "model/weight_upload.h"

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
  DeviceBuffer input_norm, post_norm, q_a, q_a_norm, q_b, kv_a, kv_a_norm, kv_b, o, gate_up, down;
  DeviceBuffer router, shared_gate_up, shared_down;
  std::vector<DeviceBuffer> expert_gate_up, expert_down;
  std::vector<float> correction_bias;  // on the host, where the routing is chosen
  DeviceBuffer cache;
};

// A step's buffers, grown to the largest step (reserve_workspace sizes them at start-up).
struct Workspace {
  template <typename T>
  T* grow(DeviceBuffer& b, std::int64_t count) {
    const std::size_t bytes = static_cast<std::size_t>(std::max<std::int64_t>(count, 1)) * sizeof(T);
    if (b.bytes() < bytes) b = DeviceBuffer(DeviceKind::Cuda, bytes);
    return static_cast<T*>(b.data());
  }
  template <typename T>
  T* upload(DeviceBuffer& b, const std::vector<T>& host, cudaStream_t stream) {
    T* d = grow<T>(b, static_cast<std::int64_t>(host.size()));
    if (!host.empty())
      LS_CUDA_CHECK(cudaMemcpyAsync(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
    return d;
  }
  DeviceBuffer h, x, out, qa, qa_normed, q, kv, q_latent, o_latent, att;
  DeviceBuffer gate_up, act, logits, expert_x, expert_y, routed_rows, routed_weights;
  DeviceBuffer rows, normed, local_logits, gathered;
  DeviceBuffer ids, positions, seq_of, tables, slots;
};

}  // namespace

template <HalfFloat W>
class CudaDeepseekV3Transformer::StageIn final : public GpuStage {
 public:
  StageIn(const ModelConfig& c, const WeightSource& w, Collectives& tp, Collectives& pp, const LayerRange& layers,
          int gpu, int block_size)
      : config_(c),
        slice_(TensorParallelSlice::make(c, tp.rank(), tp.size())),
        tp_(tp),
        pp_(pp),
        layers_(layers),
        block_size_(block_size),
        ctx_(gpu, tp.stream()),
        rope_factor_(static_cast<float>(rope_attention_factor(c))),
        scale_(attention_softmax_scale(c)) {
    LS_CHECK(tp.stream() && tp.stream() == pp.stream(),
             "the CUDA backend needs device-buffer collectives (NCCL or MPI staged) that share one stream");
    if (c.mla.cache_width() > cuda::kMaxLatentWidth)
      throw CheckpointError("kv_lora_rank + qk_rope_head_dim " + std::to_string(c.mla.cache_width()) +
                            " is more than the GPU's latent attention takes (" +
                            std::to_string(cuda::kMaxLatentWidth) + ")");
    const LoadProgress progress(w, tp.rank(), pp.rank(), " to GPU " + std::to_string(gpu));
    PinnedUploader uploader;
    auto upload = [&](const StackedSlices& slices) { return upload_weight(uploader, w, slices, dtype_of<W>); };
    edge_ = upload_stage_edges(uploader, c, w, slice_, pp.rank() == 0, pp.rank() == pp.size() - 1, dtype_of<W>);
    for (int l = layers.begin; l < layers.end; ++l) {
      const DeepseekV3LayerSlices s = deepseek_v3_layer_slices(c, slice_, l);
      auto L = std::make_unique<Layer>();
      L->input_norm = upload(s.input_norm);
      L->post_norm = upload(s.post_norm);
      L->q_a = upload(s.q_a);
      L->q_a_norm = upload(s.q_a_norm);
      L->q_b = upload(s.q_b);
      L->kv_a = upload(s.kv_a);
      L->kv_a_norm = upload(s.kv_a_norm);
      L->kv_b = upload(s.kv_b);
      L->o = upload(s.o);
      L->gate_up = upload(s.gate_up);
      L->down = upload(s.down);
      L->router = upload(s.router);
      if (!s.router.empty()) {
        const WeightSlice& b = s.correction_bias;
        L->correction_bias = w.read<float>(b.name, b.shape, b.r0, b.r1, b.c0, b.c1);
      }
      for (const StackedSlices& e : s.expert_gate_up) L->expert_gate_up.push_back(upload(e));
      for (const StackedSlices& e : s.expert_down) L->expert_down.push_back(upload(e));
      L->shared_gate_up = upload(s.shared_gate_up);
      L->shared_down = upload(s.shared_down);
      layer_.push_back(std::move(L));
      progress.layer_done(l - layers.begin + 1, layers.size());
    }
    uploader.finish();
  }
  ~StageIn() override { cudaStreamSynchronize(ctx_.stream()); }

  std::uint64_t kv_block_bytes() const override {
    return static_cast<std::uint64_t>(block_size_) * config_.mla.cache_width() * sizeof(W) *
           std::max<std::size_t>(layer_.size(), 1);
  }
  void allocate_kv_cache(int num_blocks) override {
    num_kv_blocks_ = num_blocks;
    const std::size_t bytes = static_cast<std::size_t>(num_blocks) * block_size_ * config_.mla.cache_width() * sizeof(W);
    for (auto& L : layer_) {
      L->cache = DeviceBuffer(DeviceKind::Cuda, bytes);
      L->cache.fill_bytes(0);
    }
  }
  // Every buffer forward() grows, at its largest (an expert may get every token of a step).
  void reserve_workspace(int max_tokens, int max_rows) override {
    Workspace& w = ws_;
    const LatentAttentionConfig& a = config_.mla;
    const std::int64_t T = max_tokens, R = max_rows, H = config_.hidden_size, heads = slice_.q_heads;
    const std::int64_t F = std::max({slice_.ffn, slice_.expert_ffn, slice_.shared_ffn});
    w.grow<float>(w.h, T * H);
    w.grow<W>(w.x, T * H);
    w.grow<float>(w.out, T * H);
    w.grow<float>(w.qa, T * a.q_lora_rank);
    w.grow<W>(w.qa_normed, T * a.q_lora_rank);
    w.grow<float>(w.q, T * heads * a.qk_head_dim());
    w.grow<float>(w.kv, T * a.cache_width());
    w.grow<float>(w.q_latent, T * heads * a.kv_lora_rank);
    w.grow<float>(w.o_latent, T * heads * a.kv_lora_rank);
    w.grow<float>(w.att, T * heads * a.v_head_dim);
    w.grow<W>(w.gate_up, T * 2 * F);
    w.grow<W>(w.act, T * F);
    if (config_.moe.n_routed_experts > 0) {
      w.grow<float>(w.logits, T * config_.moe.n_routed_experts);
      w.grow<W>(w.expert_x, T * H);
      w.grow<float>(w.expert_y, T * H);
      w.grow<int>(w.routed_rows, T * config_.moe.num_experts_per_tok);
      w.grow<float>(w.routed_weights, T * config_.moe.num_experts_per_tok);
    }
    if (pp_.rank() == pp_.size() - 1) {
      w.grow<float>(w.rows, R * H);
      w.grow<W>(w.normed, R * H);
      w.grow<float>(w.local_logits, R * slice_.vocab_rows);
      if (tp_.size() > 1) w.grow<float>(w.gathered, tp_.size() * R * slice_.vocab_rows);
    }
  }

  std::span<const float> forward(const ForwardBatch& b) override {
    LS_CHECK(num_kv_blocks_ > 0, "forward before allocate_kv_cache");
    Workspace& w = ws_;
    const cudaStream_t stream = ctx_.stream();
    const std::int64_t T = b.token_ids.size(), H = config_.hidden_size;
    w.upload(w.ids, b.token_ids, stream);
    w.upload(w.positions, b.positions, stream);
    w.upload(w.seq_of, b.seq_of_token, stream);
    w.upload(w.tables, b.block_tables, stream);
    w.upload(w.slots, kv_cache_slots(b, block_size_, num_kv_blocks_), stream);
    float* h = w.grow<float>(w.h, T * H);
    W* x = w.grow<W>(w.x, T * H);
    float* out = w.grow<float>(w.out, T * H);
    if (pp_.rank() == 0) {
      cuda::embedding(ctx_, as<int>(w.ids), T, as<W>(edge_.embed), slice_.vocab_begin, slice_.vocab_rows, H, h);
      if (tp_.size() > 1) tp_.all_reduce(h, h, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
    } else {
      pp_.recv(h, static_cast<std::size_t>(T * H), DType::F32, pp_.rank() - 1);
    }
    const float eps = static_cast<float>(config_.rms_norm_eps);
    const float one = 1.0f;
    for (std::size_t i = 0; i < layer_.size(); ++i) {
      Layer& L = *layer_[i];
      cuda::rms_norm(ctx_, h, T, H, as<W>(L.input_norm), eps, x);
      attention(L, b, T, x, out);
      cuda::add_rms_norm(ctx_, h, out, T, H, as<W>(L.post_norm), eps, x);  // h += attention
      if (config_.moe.is_moe_layer(layers_.begin + static_cast<int>(i))) {
        moe(L, T, x, out);
      } else {
        mlp(as<W>(L.gate_up), as<W>(L.down), slice_.ffn, T, x, out);
      }
      if (tp_.size() > 1) tp_.all_reduce(out, out, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
      LS_CUBLAS_CHECK(cublasSaxpy(ctx_.blas(), static_cast<int>(T * H), &one, out, 1, h, 1));  // h += mlp
    }
    if (pp_.rank() < pp_.size() - 1) {
      pp_.send(h, static_cast<std::size_t>(T * H), DType::F32, pp_.rank() + 1);
      ctx_.synchronize();
      return {};
    }
    return logits(b, h);
  }

  const ModelConfig& config() const override { return config_; }
  int block_size() const override { return block_size_; }
  int num_kv_blocks() const override { return num_kv_blocks_; }
  bool cuda_graphs() const override { return false; }

 private:
  // out = this rank's heads' part of o_proj, all-reduced.
  void attention(Layer& L, const ForwardBatch& b, std::int64_t T, const W* x, float* out) {
    Workspace& w = ws_;
    const LatentAttentionConfig& a = config_.mla;
    const std::int64_t H = config_.hidden_size, heads = slice_.q_heads, qk = a.qk_head_dim();
    const std::int64_t nope = a.qk_nope_head_dim, rope = a.qk_rope_head_dim, kvr = a.kv_lora_rank, v = a.v_head_dim;
    const int* positions = as<int>(w.positions);
    const float* inv_freq = as<float>(edge_.inv_freq);
    float* q = w.grow<float>(w.q, T * heads * qk);
    if (L.q_a.bytes()) {
      float* qa = w.grow<float>(w.qa, T * a.q_lora_rank);
      W* qa_normed = w.grow<W>(w.qa_normed, T * a.q_lora_rank);
      cuda::linear(ctx_, x, T, H, as<W>(L.q_a), a.q_lora_rank, nullptr, qa);
      cuda::rms_norm(ctx_, qa, T, a.q_lora_rank, as<W>(L.q_a_norm), kLatentNormEps, qa_normed);
      cuda::linear(ctx_, qa_normed, T, a.q_lora_rank, as<W>(L.q_b), heads * qk, nullptr, q);
    } else {
      cuda::linear(ctx_, x, T, H, as<W>(L.q_b), heads * qk, nullptr, q);
    }
    float* kv = w.grow<float>(w.kv, T * a.cache_width());
    cuda::linear(ctx_, x, T, H, as<W>(L.kv_a), a.cache_width(), nullptr, kv);
    cuda::mla_cache_write(ctx_, kv, T, kvr, rope, as<W>(L.kv_a_norm), kLatentNormEps, positions, inv_freq, rope_factor_,
                          a.rope_interleave, as<std::int64_t>(w.slots), as<W>(L.cache));
    cuda::rope_pairs(ctx_, q + nope, T, heads, heads * qk, qk, rope, positions, inv_freq, rope_factor_,
                     a.rope_interleave);
    float* q_latent = w.grow<float>(w.q_latent, T * heads * kvr);
    float* o_latent = w.grow<float>(w.o_latent, T * heads * kvr);
    float* att = w.grow<float>(w.att, T * heads * v);
    cuda::mla_absorb_q(ctx_, q, T, heads, heads * qk, qk, as<W>(L.kv_b), nope, v, kvr, q_latent);
    cuda::latent_attention(ctx_, q_latent, q + nope, heads * qk, qk, as<W>(L.cache), T, heads, kvr, rope, block_size_,
                           as<int>(w.seq_of), positions, as<int>(w.tables), b.max_blocks, scale_, o_latent);
    cuda::mla_expand_v(ctx_, o_latent, T, heads, as<W>(L.kv_b), nope, v, kvr, att);
    cuda::linear(ctx_, att, T, heads * v, as<W>(L.o), H, nullptr, out);
    if (tp_.size() > 1) tp_.all_reduce(out, out, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
  }

  // out (= or +=) the SwiGLU MLP of ffn columns over rows x [T, hidden].
  void mlp(const W* gate_up, const W* down, std::int64_t ffn, std::int64_t T, const W* x, float* out) {
    W* both = ws_.grow<W>(ws_.gate_up, T * 2 * ffn);
    W* act = ws_.grow<W>(ws_.act, T * ffn);
    cuda::linear_silu_mul(ctx_, x, T, config_.hidden_size, gate_up, ffn, both, act);
    cuda::linear(ctx_, act, T, ffn, down, config_.hidden_size, nullptr, out);
  }

  // out = the shared experts plus each token's routed experts times their weights (this rank's
  // columns; the caller all-reduces). The routing is chosen on the host.
  void moe(Layer& L, std::int64_t T, const W* x, float* out) {
    Workspace& w = ws_;
    const MixtureOfExpertsConfig& m = config_.moe;
    const std::int64_t H = config_.hidden_size, E = m.n_routed_experts, K = m.num_experts_per_tok;
    float* logits = w.grow<float>(w.logits, T * E);
    cuda::linear(ctx_, x, T, H, as<W>(L.router), E, nullptr, logits);
    host_logits_.resize(T * E);
    LS_CUDA_CHECK(cudaMemcpyAsync(host_logits_.data(), logits, T * E * sizeof(float), cudaMemcpyDeviceToHost,
                                  ctx_.stream()));
    ctx_.synchronize();
    const cpu::ExpertRouting routing{static_cast<int>(E), m.n_group, m.topk_group, static_cast<int>(K),
                                     m.norm_topk_prob, static_cast<float>(m.routed_scaling_factor)};
    std::vector<int> ids(T * K);
    std::vector<float> weights(T * K);
    cpu::route_experts(host_logits_.data(), T, L.correction_bias.data(), routing, ids.data(), weights.data());
    // Tokens grouped by expert: rows[offset[e], offset[e + 1]) are expert e's, with their weights.
    std::vector<int> offset(E + 1, 0), rows(T * K);
    std::vector<float> row_weights(T * K);
    for (int id : ids) ++offset[id + 1];
    for (std::int64_t e = 0; e < E; ++e) offset[e + 1] += offset[e];
    std::vector<int> fill(offset.begin(), offset.end() - 1);
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t k = 0; k < K; ++k) {
        const int at = fill[ids[t * K + k]]++;
        rows[at] = static_cast<int>(t);
        row_weights[at] = weights[t * K + k];
      }
    const int* d_rows = w.upload(w.routed_rows, rows, ctx_.stream());
    const float* d_weights = w.upload(w.routed_weights, row_weights, ctx_.stream());
    if (m.n_shared_experts > 0) {
      mlp(as<W>(L.shared_gate_up), as<W>(L.shared_down), slice_.shared_ffn, T, x, out);
    } else {
      LS_CUDA_CHECK(cudaMemsetAsync(out, 0, T * H * sizeof(float), ctx_.stream()));
    }
    W* expert_x = w.grow<W>(w.expert_x, T * H);
    float* expert_y = w.grow<float>(w.expert_y, T * H);
    for (std::int64_t e = 0; e < E; ++e) {
      const std::int64_t n = offset[e + 1] - offset[e];
      if (n == 0) continue;
      cuda::gather_rows(ctx_, x, d_rows + offset[e], n, H, expert_x);
      mlp(as<W>(L.expert_gate_up[e]), as<W>(L.expert_down[e]), slice_.expert_ffn, n, expert_x, expert_y);
      cuda::scatter_add_rows(ctx_, expert_y, d_rows + offset[e], d_weights + offset[e], n, H, out);
    }
  }

  // The logit rows through the final norm and lm_head, gathered over TP, to the host.
  std::span<const float> logits(const ForwardBatch& b, const float* h) {
    Workspace& w = ws_;
    const std::int64_t R = b.logit_rows.size(), H = config_.hidden_size, VR = slice_.vocab_rows, V = config_.vocab_size;
    if (R == 0) {
      ctx_.synchronize();
      return {};
    }
    float* rows = w.grow<float>(w.rows, R * H);
    for (std::int64_t i = 0; i < R; ++i)
      LS_CUDA_CHECK(cudaMemcpyAsync(rows + i * H, h + static_cast<std::int64_t>(b.logit_rows[i]) * H, H * sizeof(float),
                                    cudaMemcpyDeviceToDevice, ctx_.stream()));
    W* normed = w.grow<W>(w.normed, R * H);
    cuda::rms_norm(ctx_, rows, R, H, as<W>(edge_.final_norm), static_cast<float>(config_.rms_norm_eps), normed);
    float* local = w.grow<float>(w.local_logits, R * VR);
    cuda::linear(ctx_, normed, R, H, as<W>(edge_.lm_head), VR, nullptr, local);
    const int n = tp_.size();
    float* gathered = local;
    if (n > 1) {
      gathered = w.grow<float>(w.gathered, n * R * VR);
      tp_.all_gather(local, gathered, static_cast<std::size_t>(R * VR), DType::F32);
    }
    std::vector<float> staged(static_cast<std::size_t>(n * R * VR));
    LS_CUDA_CHECK(cudaMemcpyAsync(staged.data(), gathered, staged.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                  ctx_.stream()));
    ctx_.synchronize();
    host_out_.resize(R * V);
    assemble_vocab_parallel_logits(staged.data(), n, R, VR, V, host_out_.data());
    return host_out_;
  }

  ModelConfig config_;
  TensorParallelSlice slice_;
  Collectives& tp_;
  Collectives& pp_;
  LayerRange layers_;
  int block_size_;
  int num_kv_blocks_ = 0;
  GpuContext ctx_;
  float rope_factor_, scale_;
  GpuStageEdges edge_;
  std::vector<std::unique_ptr<Layer>> layer_;
  Workspace ws_;
  std::vector<float> host_logits_, host_out_;
};

CudaDeepseekV3Transformer::CudaDeepseekV3Transformer(const ModelConfig& c, const WeightSource& w, Collectives& tp,
                                                     Collectives& pp, const LayerRange& layers, int gpu,
                                                     int block_size)
    : stage_(with_weight_type(c.dtype, [&]<HalfFloat W>(W) -> std::unique_ptr<GpuStage> {
        return std::make_unique<StageIn<W>>(c, w, tp, pp, layers, gpu, block_size);
      })) {}

CudaDeepseekV3Transformer::~CudaDeepseekV3Transformer() = default;

std::uint64_t CudaDeepseekV3Transformer::kv_block_bytes() const { return stage_->kv_block_bytes(); }
void CudaDeepseekV3Transformer::allocate_kv_cache(int num_blocks) { stage_->allocate_kv_cache(num_blocks); }
void CudaDeepseekV3Transformer::reserve_workspace(int max_tokens, int max_rows) {
  stage_->reserve_workspace(max_tokens, max_rows);
}
std::span<const float> CudaDeepseekV3Transformer::forward(const ForwardBatch& b) { return stage_->forward(b); }
const ModelConfig& CudaDeepseekV3Transformer::config() const { return stage_->config(); }
int CudaDeepseekV3Transformer::block_size() const { return stage_->block_size(); }
int CudaDeepseekV3Transformer::num_kv_blocks() const { return stage_->num_kv_blocks(); }

}  // namespace lockstep
