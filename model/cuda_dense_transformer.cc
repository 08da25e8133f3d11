// CudaDenseStage (see cuda_dense_transformer.h). Mirrors DenseTransformer step for step; the
// difference is where the tensors live and that the linears round activations to W (the
// model's dtype, bf16 or fp16).
#include "model/cuda_dense_transformer.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/dense_ops.h"
#include "kernels/pinned_uploader.h"
#include "model/gpu_stage_frame.h"
#include "model/weight_type.h"

namespace lockstep {
namespace {

// A weight (or KV cache) buffer as W; null when empty (no qkv bias).
template <HalfFloat W>
const W* ptr(const DeviceBuffer& b) {
  return b.bytes() ? static_cast<const W*>(b.data()) : nullptr;
}

struct Layer {
  DeviceBuffer input_norm, post_norm, qkv, qkv_bias, q_norm, k_norm, o, gate_up, down;
  DeviceBuffer k_cache, v_cache;
};

// The layers' step buffers besides the frame's (x, the normed hidden state, and act, silu(gate)
// * up, only feed linears, so they are in W).
struct DenseBuffers {
  DeviceBuffer qkv, q, att, gate_up, act;
};

template <HalfFloat W>
class CudaDenseStage final : public GpuStageFrame<W> {
 public:
  CudaDenseStage(const ModelConfig& config, const WeightSource& weights, PinnedUploader& uploader, Collectives& tp,
                 Collectives& pp, const LayerRange& layers, int gpu, int block_size, bool cuda_graphs);
  ~CudaDenseStage() override { ctx_.synchronize(); }  // the layers' buffers go before the frame's

  std::uint64_t kv_block_bytes() const override;
  void allocate_kv_cache(int num_blocks) override;
  // Activations, the rounded attention output, logits, the sampler's keys (what is left
  // unreserved: cuBLAS and NCCL internals, the attention's split partials, block tables).
  void reserve_workspace(int max_tokens, int max_rows) override;

 private:
  using Frame = GpuStageFrame<W>;
  using Frame::config_, Frame::slice_, Frame::tp_, Frame::pp_, Frame::block_size_, Frame::ctx_, Frame::ws_;
  // Bytes of one cached k or v value: W's, or 1 with an fp8 --kv-cache-dtype.
  std::size_t kv_value_bytes() const { return config_.kv_cache_dtype == KvCacheDtype::Auto ? sizeof(W) : 1; }
  void run_layers(std::int64_t T, float* h, W* x, float* out) override;
  void attention(Layer& L, std::int64_t T, const W* x, float* out);
  void mlp(Layer& L, std::int64_t T, const W* x, float* out);

  std::vector<std::unique_ptr<Layer>> layer_;
  DenseBuffers buf_;
};

}  // namespace

template <HalfFloat W>
CudaDenseStage<W>::CudaDenseStage(const ModelConfig& c, const WeightSource& w, PinnedUploader& uploader,
                                  Collectives& tp, Collectives& pp, const LayerRange& layers, int gpu, int block_size,
                                  bool cuda_graphs)
    : Frame(c, w, uploader, tp, pp, layers, gpu, block_size, cuda_graphs) {
  LS_CHECK(c.head_dim <= 256 && c.head_dim % 4 == 0,
           "head_dim " << c.head_dim << " is not a multiple of 4 up to 256, which the GPU attention takes");
  if (c.kv_cache_dtype != KvCacheDtype::Auto && !cuda::fp8_kv_cache_supported(ctx_, c.head_dim))
    throw std::runtime_error("--kv-cache-dtype " + std::string(kv_cache_dtype_name(c.kv_cache_dtype)) +
                             ": the GPU attention reads an fp8 cache for head_dim a multiple of 16 up to 128 on GPUs "
                             "of compute capability 8.0 or newer; this model's head_dim is " +
                             std::to_string(c.head_dim) + ", GPU " + std::to_string(gpu) + "'s capability " +
                             std::to_string(ctx_.compute_capability() / 10) + "." +
                             std::to_string(ctx_.compute_capability() % 10) + ". Use --kv-cache-dtype auto");
  const LoadProgress progress(w, tp.rank(), pp.rank(), " to GPU " + std::to_string(gpu));
  // Every weight goes from the source into pinned staging buffers and on to the GPU, a chunk
  // read while the previous one copies (model/weight_upload.h).
  auto upload = [&](const StackedSlices& slices) { return upload_weight(uploader, w, slices, dtype_of<W>); };
  for (int l = layers.begin; l < layers.end; ++l) {
    const LayerWeightSlices h = layer_weight_slices(c, slice_, l);
    auto L = std::make_unique<Layer>();
    L->input_norm = upload(h.input_norm);
    L->post_norm = upload(h.post_norm);
    L->qkv = upload(h.qkv);
    L->qkv_bias = upload(h.qkv_bias);
    L->q_norm = upload(h.q_norm);
    L->k_norm = upload(h.k_norm);
    L->o = upload(h.o);
    L->gate_up = upload(h.gate_up);
    L->down = upload(h.down);
    layer_.push_back(std::move(L));
    progress.layer_done(l - layers.begin + 1, layers.size());
  }
}

template <HalfFloat W>
std::uint64_t CudaDenseStage<W>::kv_block_bytes() const {
  return static_cast<std::uint64_t>(block_size_) * slice_.kv_heads * config_.head_dim * kv_value_bytes() * 2 *
         std::max<std::size_t>(layer_.size(), 1);
}

// Every buffer the step functions below grow, at its largest: attention() and mlp() per token,
// the frame's per token and row, and the context's scratch for what linear() rounds o's input
// into.
template <HalfFloat W>
void CudaDenseStage<W>::reserve_workspace(int max_tokens, int max_rows) {
  StepWorkspace& w = ws_;
  const std::int64_t T = max_tokens, hd = config_.head_dim;
  const std::int64_t qh = slice_.q_heads, kvh = slice_.kv_heads, F = slice_.ffn;
  w.reserve<float>(buf_.qkv, T * (qh + 2 * kvh) * hd);
  w.reserve<float>(buf_.q, T * qh * hd);
  w.reserve<float>(buf_.att, T * qh * hd);
  w.reserve<W>(buf_.gate_up, T * 2 * F);
  w.reserve<W>(buf_.act, T * F);
  this->reserve_frame_workspace(T, max_rows, static_cast<std::size_t>(T * qh * hd) * sizeof(W));
}

template <HalfFloat W>
void CudaDenseStage<W>::allocate_kv_cache(int num_blocks) {
  this->set_num_kv_blocks(num_blocks);
  const std::size_t bytes =
      static_cast<std::size_t>(num_blocks) * block_size_ * slice_.kv_heads * config_.head_dim * kv_value_bytes();
  for (auto& L : layer_) {
    L->k_cache = DeviceBuffer(DeviceKind::Cuda, bytes);
    L->v_cache = DeviceBuffer(DeviceKind::Cuda, bytes);
    L->k_cache.fill_bytes(0);
    L->v_cache.fill_bytes(0);
  }
}

template <HalfFloat W>
void CudaDenseStage<W>::attention(Layer& L, std::int64_t T, const W* x, float* out) {
  StepWorkspace& w = ws_;
  const std::int64_t H = config_.hidden_size, hd = config_.head_dim, qh = slice_.q_heads, kvh = slice_.kv_heads;
  float* qkv = w.grow<float>(buf_.qkv, T * (qh + 2 * kvh) * hd);
  float* q = w.grow<float>(buf_.q, T * qh * hd);
  float* att = w.grow<float>(buf_.att, T * qh * hd);
  const int* positions = this->positions();
  cuda::linear(ctx_, x, T, H, ptr<W>(L.qkv), (qh + 2 * kvh) * hd, nullptr, qkv);
  if (config_.qk_norm)
    cuda::head_rms_norm(ctx_, qkv, T, qh, kvh, hd, ptr<W>(L.q_norm), ptr<W>(L.k_norm),
                        static_cast<float>(config_.rms_norm_eps));
  // The cache's values are C: W, or the fp8 format of --kv-cache-dtype.
  auto cache_in = [&]<KvCacheElement C>(C*) {
    C* k_cache = static_cast<C*>(L.k_cache.data());
    C* v_cache = static_cast<C*>(L.v_cache.data());
    cuda::split_qkv_rope_cache<W, C>(ctx_, qkv, T, qh, kvh, hd, ptr<W>(L.qkv_bias), positions,
                                     this->inv_freq(), this->kv_slots(), q, k_cache, v_cache);
    // A step mixing decodes with prefill chunks attends in two launches: the decodes as a decode
    // step (a block per token, contexts split), then the chunks (their tokens sharing K/V tiles).
    // In one launch the decodes would be packed several to a block, one after the other.
    const std::int64_t decodes = this->query_run_ > 1 ? this->single_runs_ : 0;
    auto attend = [&](std::int64_t first, std::int64_t count, std::int64_t run) {
      cuda::paged_attention<C>(ctx_, q + first * qh * hd, k_cache, v_cache, count, qh, kvh, hd, block_size_,
                               this->seq_of() + first, positions + first, this->block_tables(),
                               this->max_blocks_, attention_softmax_scale(config_), att + first * qh * hd,
                               this->max_context_, run);
    };
    if (decodes > 0) attend(0, decodes, 1);
    attend(decodes, T - decodes, this->query_run_);
  };
  switch (config_.kv_cache_dtype) {
    case KvCacheDtype::Auto: cache_in(static_cast<W*>(nullptr)); break;
    case KvCacheDtype::Fp8E4M3: cache_in(static_cast<fp8_e4m3*>(nullptr)); break;
    case KvCacheDtype::Fp8E5M2: cache_in(static_cast<fp8_e5m2*>(nullptr)); break;
  }
  cuda::linear(ctx_, att, T, qh * hd, ptr<W>(L.o), H, nullptr, out);
  if (tp_.size() > 1) tp_.all_reduce(out, out, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
}

template <HalfFloat W>
void CudaDenseStage<W>::mlp(Layer& L, std::int64_t T, const W* x, float* out) {
  const std::int64_t H = config_.hidden_size, F = slice_.ffn;
  StepWorkspace& w = ws_;
  W* gate_up = w.grow<W>(buf_.gate_up, T * 2 * F);
  W* act = w.grow<W>(buf_.act, T * F);
  cuda::linear_silu_mul(ctx_, x, T, H, ptr<W>(L.gate_up), F, gate_up, act);
  cuda::linear(ctx_, act, T, F, ptr<W>(L.down), H, nullptr, out);
  if (tp_.size() > 1) tp_.all_reduce(out, out, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
}

template <HalfFloat W>
void CudaDenseStage<W>::run_layers(std::int64_t T, float* h, W* x, float* out) {
  const std::int64_t H = config_.hidden_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  for (std::size_t i = 0; i < layer_.size(); ++i) {
    Layer& L = *layer_[i];
    if (i == 0) cuda::rms_norm(ctx_, h, T, H, ptr<W>(L.input_norm), eps, x);
    else cuda::add_rms_norm(ctx_, h, out, T, H, ptr<W>(L.input_norm), eps, x);  // h += previous mlp
    attention(L, T, x, out);
    cuda::add_rms_norm(ctx_, h, out, T, H, ptr<W>(L.post_norm), eps, x);
    mlp(L, T, x, out);
  }
  if (!layer_.empty()) {
    const float one = 1.0f;
    LS_CUBLAS_CHECK(cublasSaxpy(ctx_.blas(), static_cast<int>(T * H), &one, out, 1, h, 1));  // h += last mlp
  }
}

std::unique_ptr<GpuStage> make_cuda_dense_stage(const ModelConfig& c, const WeightSource& w, Collectives& tp,
                                                Collectives& pp, const LayerRange& layers, int gpu, int block_size,
                                                bool cuda_graphs) {
  return with_weight_type(c.dtype, [&]<HalfFloat W>(W) -> std::unique_ptr<GpuStage> {
    PinnedUploader uploader;
    auto stage = std::make_unique<CudaDenseStage<W>>(c, w, uploader, tp, pp, layers, gpu, block_size, cuda_graphs);
    uploader.finish();
    return stage;
  });
}

}  // namespace lockstep
