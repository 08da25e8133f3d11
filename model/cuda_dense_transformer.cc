// CudaDenseTransformer (see cuda_dense_transformer.h). Mirrors DenseTransformer step for step;
// the difference is where the tensors live and that the linears round activations to W (the
// model's dtype, bf16 or fp16).
#include "model/cuda_dense_transformer.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cublas_check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda_graph_cache.h"
#include "kernels/dense_ops.h"
#include "kernels/device_buffer.h"
#include "kernels/gpu_context.h"
#include "kernels/log.h"
#include "kernels/pinned_uploader.h"
#include "kernels/step_gap_meter.h"
#include "model/weight_type.h"
#include "model/weight_upload.h"

namespace lockstep {
namespace {

// A weight (or KV cache) buffer as W; null when empty (no qkv bias).
template <HalfFloat W>
const W* ptr(const DeviceBuffer& b) {
  return b.bytes() ? static_cast<const W*>(b.data()) : nullptr;
}

// Decode steps of up to this many sequences replay captured CUDA graphs (unless --enforce-eager).
constexpr std::int64_t kMaxGraphTokens = 64;

// One token per sequence, each sampled: the steps whose shape recurs step after step.
bool is_decode_step(const ForwardBatch& b) {
  const std::size_t T = b.token_ids.size();
  if (T == 0 || b.logit_rows.size() != T) return false;
  for (std::size_t i = 0; i < T; ++i)
    if (b.logit_rows[i] != static_cast<int>(i) || b.seq_of_token[i] != static_cast<int>(i)) return false;
  return true;
}

struct Layer {
  DeviceBuffer input_norm, post_norm, qkv, qkv_bias, q_norm, k_norm, o, gate_up, down;
  DeviceBuffer k_cache, v_cache;
};

// Per-step activations and batch metadata, grown to the largest step seen. x (the normed
// hidden state) and act (silu(gate) * up) only feed linears, so they are in W.
struct Workspace {
  // Grows a buffer to hold `count` elements of T (contents are not kept), with half as much
  // again for the steps after (exact: no more than asked, as start-up sizing wants); a move
  // bumps the generation, so that graphs captured with the old address are captured again.
  template <typename T>
  T* grow(DeviceBuffer& b, std::int64_t count, bool exact = false) {
    const std::size_t bytes = static_cast<std::size_t>(std::max<std::int64_t>(count, 1)) * sizeof(T);
    if (b.bytes() < bytes) {
      b = DeviceBuffer(DeviceKind::Cuda, exact ? bytes : bytes + bytes / 2);
      ++generation;
    }
    return static_cast<T*>(b.data());
  }
  template <typename T>
  void reserve(DeviceBuffer& b, std::int64_t count) {
    grow<T>(b, count, /*exact=*/true);
  }
  template <typename T>
  T* upload(DeviceBuffer& b, const std::vector<T>& host, cudaStream_t stream) {
    T* d = grow<T>(b, static_cast<std::int64_t>(host.size()));
    if (!host.empty())
      LS_CUDA_CHECK(cudaMemcpyAsync(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
    return d;
  }
  std::uint64_t generation = 0;

  DeviceBuffer h, x, out, qkv, q, att, gate_up, act, rows, local_logits, gathered;
  DeviceBuffer ids, positions, seq_of, tables, slots;
  DeviceBuffer argmax_values, argmax_ids, draws, drawn;
  // Pinned host memory for what a step copies back: pageable copies run at a fraction of PCIe
  // speed, and at batch 32 x 152k vocabulary the logits are 19 MB.
  void* host = nullptr;
  std::size_t host_bytes = 0;
  ~Workspace() {
    if (host) cudaFreeHost(host);
  }
  void* pinned(std::size_t bytes) {
    if (bytes > host_bytes) {
      if (host) LS_CUDA_CHECK(cudaFreeHost(host));
      host_bytes = bytes + bytes / 2;
      LS_CUDA_CHECK(cudaMallocHost(&host, host_bytes));
    }
    return host;
  }
};

}  // namespace

template <HalfFloat W>
class CudaDenseTransformer::StageIn final : public GpuStage {
 public:
  StageIn(const ModelConfig& config, const WeightSource& weights, Collectives& tp, Collectives& pp,
          const LayerRange& layers, int gpu, int block_size, bool cuda_graphs);
  ~StageIn() override;

  std::uint64_t kv_block_bytes() const override;
  void allocate_kv_cache(int num_blocks) override;
  void reserve_workspace(int max_tokens, int max_rows) override;
  bool cuda_graphs() const override { return graphs_ != nullptr; }
  std::span<const float> forward(const ForwardBatch& batch) override;
  std::vector<int> forward_argmax(const ForwardBatch& batch) override;
  std::vector<int> forward_sample(const ForwardBatch& batch, std::span<const RowSampling> rows) override;
  const ModelConfig& config() const override { return config_; }
  int block_size() const override { return block_size_; }
  int num_kv_blocks() const override { return num_kv_blocks_; }

 private:
  // Bytes of one cached k or v value: W's, or 1 with an fp8 --kv-cache-dtype.
  std::size_t kv_value_bytes() const { return config_.kv_cache_dtype == KvCacheDtype::Auto ? sizeof(W) : 1; }
  void attention(Layer& L, std::int64_t T, const W* x, float* out);
  void mlp(Layer& L, std::int64_t T, const W* x, float* out);
  void run_layers(std::int64_t tokens);
  // Runs the stage; on the last stage returns the logit rows' vocab-parallel logits [rows,
  // vocab_rows] on the GPU, else (or with no rows) nullptr.
  float* local_logits(const ForwardBatch& batch);
  // The same on every TP rank, gathered: [tp, rows, vocab_rows] on the GPU, or nullptr.
  float* gathered_logits(const ForwardBatch& batch);

  ModelConfig config_;
  TensorParallelSlice slice_;
  Collectives& tp_;
  Collectives& pp_;
  LayerRange layers_;
  int block_size_;
  int num_kv_blocks_ = 0;
  int max_blocks_ = 0;  // this step's block-table width
  int max_context_ = 0;  // this step's longest context (largest position + 1)
  std::int64_t query_run_ = 1;  // this step's longest run of one sequence's tokens
  std::int64_t single_runs_ = 0;  // its leading tokens that are runs of one (decodes, scheduled first)
  GpuContext ctx_;
  StepGapMeter gaps_;  // the host's share of a step, logged at debug level
  GpuStageEdges edge_;
  std::vector<std::unique_ptr<Layer>> layer_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<CudaGraphCache> graphs_;  // null: eager
  bool gpu_sampling_ = false;
  std::vector<float> host_logits_;  // the last forward's at TP > 1 (at TP1 it returns the pinned staging)
};

CudaDenseTransformer::CudaDenseTransformer(const ModelConfig& c, const WeightSource& w, Collectives& tp,
                                           Collectives& pp, const LayerRange& layers, int gpu, int block_size,
                                           bool cuda_graphs)
    : stage_(with_weight_type(c.dtype, [&]<HalfFloat W>(W) -> std::unique_ptr<GpuStage> {
        return std::make_unique<StageIn<W>>(c, w, tp, pp, layers, gpu, block_size, cuda_graphs);
      })) {}

CudaDenseTransformer::~CudaDenseTransformer() = default;

std::uint64_t CudaDenseTransformer::kv_block_bytes() const { return stage_->kv_block_bytes(); }
void CudaDenseTransformer::allocate_kv_cache(int num_blocks) { stage_->allocate_kv_cache(num_blocks); }
void CudaDenseTransformer::reserve_workspace(int max_tokens, int max_rows) {
  stage_->reserve_workspace(max_tokens, max_rows);
}
bool CudaDenseTransformer::cuda_graphs() const { return stage_->cuda_graphs(); }
std::span<const float> CudaDenseTransformer::forward(const ForwardBatch& b) { return stage_->forward(b); }
std::vector<int> CudaDenseTransformer::forward_argmax(const ForwardBatch& b) { return stage_->forward_argmax(b); }
std::vector<int> CudaDenseTransformer::forward_sample(const ForwardBatch& b, std::span<const RowSampling> rows) {
  return stage_->forward_sample(b, rows);
}
const ModelConfig& CudaDenseTransformer::config() const { return stage_->config(); }
int CudaDenseTransformer::block_size() const { return stage_->block_size(); }
int CudaDenseTransformer::num_kv_blocks() const { return stage_->num_kv_blocks(); }

template <HalfFloat W>
CudaDenseTransformer::StageIn<W>::StageIn(const ModelConfig& c, const WeightSource& w, Collectives& tp,
                                          Collectives& pp, const LayerRange& layers, int gpu, int block_size,
                                          bool cuda_graphs)
    : config_(c),
      slice_(TensorParallelSlice::make(c, tp.rank(), tp.size())),
      tp_(tp),
      pp_(pp),
      layers_(layers),
      block_size_(block_size),
      ctx_(gpu, tp.stream()),
      gaps_(ctx_.stream()),
      ws_(std::make_unique<Workspace>()),
      // Staged collectives (ranks sharing a GPU) wait on the host, which a captured graph cannot.
      graphs_(cuda_graphs && !(tp.backend() == CommBackend::MpiStaged && tp.size() * pp.size() > 1)
                  ? std::make_unique<CudaGraphCache>()
                  : nullptr) {
  const char* gpu_sampling = std::getenv("LOCKSTEP_GPU_SAMPLING");
  gpu_sampling_ = !(gpu_sampling && std::string(gpu_sampling) == "0");
  LS_CHECK(tp.stream() && tp.stream() == pp.stream(),
           "the CUDA backend needs device-buffer collectives (NCCL or MPI staged) that share one stream");
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
  PinnedUploader uploader;
  auto upload = [&](const StackedSlices& slices) { return upload_weight(uploader, w, slices, dtype_of<W>); };
  edge_ = upload_stage_edges(uploader, c, w, slice_, pp.rank() == 0, pp.rank() == pp.size() - 1, dtype_of<W>);
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
  uploader.finish();
}

template <HalfFloat W>
CudaDenseTransformer::StageIn<W>::~StageIn() {
  cudaStreamSynchronize(ctx_.stream());  // nothing of ours (graphs, buffers) is freed while in use
}

template <HalfFloat W>
std::uint64_t CudaDenseTransformer::StageIn<W>::kv_block_bytes() const {
  return static_cast<std::uint64_t>(block_size_) * slice_.kv_heads * config_.head_dim * kv_value_bytes() * 2 *
         std::max<std::size_t>(layer_.size(), 1);
}

// Every buffer the step functions below grow, at its largest: attention(), mlp() and
// run_layers() per token, local_logits() and gathered_logits() per row, and the context's
// scratch for what linear() rounds o's input into and what sample_rows() sorts.
template <HalfFloat W>
void CudaDenseTransformer::StageIn<W>::reserve_workspace(int max_tokens, int max_rows) {
  Workspace& w = *ws_;
  const std::int64_t T = max_tokens, R = max_rows, H = config_.hidden_size, hd = config_.head_dim;
  const std::int64_t qh = slice_.q_heads, kvh = slice_.kv_heads, F = slice_.ffn, VR = slice_.vocab_rows;
  w.reserve<float>(w.h, T * H);
  w.reserve<W>(w.x, std::max(T, R) * H);  // also the final norm's rows
  w.reserve<float>(w.out, T * H);
  w.reserve<float>(w.qkv, T * (qh + 2 * kvh) * hd);
  w.reserve<float>(w.q, T * qh * hd);
  w.reserve<float>(w.att, T * qh * hd);
  w.reserve<W>(w.gate_up, T * 2 * F);
  w.reserve<W>(w.act, T * F);
  std::size_t scratch = static_cast<std::size_t>(T * qh * hd) * sizeof(W);
  if (pp_.rank() == pp_.size() - 1) {
    w.reserve<float>(w.rows, R * H);
    w.reserve<float>(w.local_logits, R * VR);
    if (tp_.size() > 1) w.reserve<float>(w.gathered, tp_.size() * R * VR);
    if (gpu_sampling_ && config_.vocab_size <= kMaxSamplingVocab)
      scratch = std::max(scratch, static_cast<std::size_t>(R * config_.vocab_size) * sizeof(unsigned));
  }
  ctx_.reserve_scratch(scratch);
}

template <HalfFloat W>
void CudaDenseTransformer::StageIn<W>::allocate_kv_cache(int num_blocks) {
  num_kv_blocks_ = num_blocks;
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
void CudaDenseTransformer::StageIn<W>::attention(Layer& L, std::int64_t T, const W* x, float* out) {
  Workspace& w = *ws_;
  const std::int64_t H = config_.hidden_size, hd = config_.head_dim, qh = slice_.q_heads, kvh = slice_.kv_heads;
  float* qkv = w.grow<float>(w.qkv, T * (qh + 2 * kvh) * hd);
  float* q = w.grow<float>(w.q, T * qh * hd);
  float* att = w.grow<float>(w.att, T * qh * hd);
  const int* positions = static_cast<const int*>(w.positions.data());
  cuda::linear(ctx_, x, T, H, ptr<W>(L.qkv), (qh + 2 * kvh) * hd, nullptr, qkv);
  if (config_.qk_norm)
    cuda::head_rms_norm(ctx_, qkv, T, qh, kvh, hd, ptr<W>(L.q_norm), ptr<W>(L.k_norm),
                        static_cast<float>(config_.rms_norm_eps));
  // The cache's values are C: W, or the fp8 format of --kv-cache-dtype.
  auto cache_in = [&]<KvCacheElement C>(C*) {
    C* k_cache = static_cast<C*>(L.k_cache.data());
    C* v_cache = static_cast<C*>(L.v_cache.data());
    cuda::split_qkv_rope_cache<W, C>(ctx_, qkv, T, qh, kvh, hd, ptr<W>(L.qkv_bias), positions,
                                     static_cast<const float*>(edge_.inv_freq.data()),
                                     static_cast<const std::int64_t*>(w.slots.data()), q, k_cache, v_cache);
    // A step mixing decodes with prefill chunks attends in two launches: the decodes as a decode
    // step (a block per token, contexts split), then the chunks (their tokens sharing K/V tiles).
    // In one launch the decodes would be packed several to a block, one after the other.
    const std::int64_t decodes = query_run_ > 1 ? single_runs_ : 0;
    auto attend = [&](std::int64_t first, std::int64_t count, std::int64_t run) {
      cuda::paged_attention<C>(ctx_, q + first * qh * hd, k_cache, v_cache, count, qh, kvh, hd, block_size_,
                               static_cast<const int*>(w.seq_of.data()) + first, positions + first,
                               static_cast<const int*>(w.tables.data()), max_blocks_,
                               attention_softmax_scale(config_), att + first * qh * hd, max_context_, run);
    };
    if (decodes > 0) attend(0, decodes, 1);
    attend(decodes, T - decodes, query_run_);
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
void CudaDenseTransformer::StageIn<W>::mlp(Layer& L, std::int64_t T, const W* x, float* out) {
  Workspace& w = *ws_;
  const std::int64_t H = config_.hidden_size, F = slice_.ffn;
  W* gate_up = w.grow<W>(w.gate_up, T * 2 * F);
  W* act = w.grow<W>(w.act, T * F);
  cuda::linear_silu_mul(ctx_, x, T, H, ptr<W>(L.gate_up), F, gate_up, act);
  cuda::linear(ctx_, act, T, F, ptr<W>(L.down), H, nullptr, out);
  if (tp_.size() > 1) tp_.all_reduce(out, out, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
}

// Embedding (or the previous stage's activations), the layers, and on to the next stage: only
// enqueued work on the stream, no host waits or allocations once the buffers are sized, so it
// can be captured as a graph.
template <HalfFloat W>
void CudaDenseTransformer::StageIn<W>::run_layers(std::int64_t T) {
  Workspace& w = *ws_;
  const std::int64_t H = config_.hidden_size;
  float* h = static_cast<float*>(w.h.data());
  W* x = static_cast<W*>(w.x.data());
  float* out = static_cast<float*>(w.out.data());
  if (pp_.rank() == 0) {
    cuda::embedding(ctx_, static_cast<const int*>(w.ids.data()), T, ptr<W>(edge_.embed), slice_.vocab_begin,
                    slice_.vocab_rows, H, h);
    if (tp_.size() > 1) tp_.all_reduce(h, h, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
  } else {
    pp_.recv(h, static_cast<std::size_t>(T * H), DType::F32, pp_.rank() - 1);
  }
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
  if (pp_.rank() < pp_.size() - 1) pp_.send(h, static_cast<std::size_t>(T * H), DType::F32, pp_.rank() + 1);
}

template <HalfFloat W>
float* CudaDenseTransformer::StageIn<W>::local_logits(const ForwardBatch& b) {
  LS_CHECK(num_kv_blocks_ > 0, "forward before allocate_kv_cache");
  Workspace& w = *ws_;
  const cudaStream_t stream = ctx_.stream();
  const std::int64_t T = b.token_ids.size(), H = config_.hidden_size;
  // A decode step of up to kMaxGraphTokens sequences replays the graph of its shape: its block
  // tables padded to a power-of-two width and its attention split for that width, so that the
  // steps of a batch share one graph as their contexts grow.
  const bool graph = graphs_ && T <= kMaxGraphTokens && is_decode_step(b);
  const int width = graph ? static_cast<int>(std::bit_ceil(static_cast<unsigned>(std::max(b.max_blocks, 1))))
                          : b.max_blocks;
  std::vector<int> tables = b.block_tables;
  if (width != b.max_blocks) {
    tables.assign(static_cast<std::size_t>(T) * width, 0);  // the padding is never read
    for (std::int64_t i = 0; i < T; ++i)
      std::copy_n(b.block_tables.begin() + i * b.max_blocks, b.max_blocks, tables.begin() + i * width);
  }
  const std::vector<std::int64_t> slots = kv_cache_slots(b, block_size_, num_kv_blocks_);
  max_blocks_ = width;
  max_context_ = graph ? width * block_size_ : T ? *std::max_element(b.positions.begin(), b.positions.end()) + 1 : 0;
  query_run_ = 0;  // the longest run of one sequence's tokens: a prefill chunk's length, 1 at decode
  for (std::int64_t i = 0, run = 0; i < T; ++i) {
    run = i > 0 && b.seq_of_token[i] == b.seq_of_token[i - 1] ? run + 1 : 1;
    query_run_ = std::max(query_run_, run);
  }
  for (single_runs_ = 0; single_runs_ < T; ++single_runs_) {
    const std::int64_t i = single_runs_;
    if (i + 1 < T && b.seq_of_token[i + 1] == b.seq_of_token[i]) break;  // a chunk starts here
  }
  w.upload(w.ids, b.token_ids, stream);
  w.upload(w.positions, b.positions, stream);
  w.upload(w.seq_of, b.seq_of_token, stream);
  w.upload(w.tables, tables, stream);
  w.upload(w.slots, slots, stream);
  w.grow<float>(w.h, T * H);
  w.grow<W>(w.x, T * H);
  w.grow<float>(w.out, T * H);
  gaps_.launching();
  if (graph) {
    const std::uint64_t key = static_cast<std::uint64_t>(T) << 32 | static_cast<std::uint32_t>(width);
    graphs_->run(key, w.generation + ctx_.scratch_generation(), stream, [&] { run_layers(T); });
  } else {
    run_layers(T);
  }
  if (pp_.rank() < pp_.size() - 1) return nullptr;
  const float* h = static_cast<const float*>(w.h.data());
  const float eps = static_cast<float>(config_.rms_norm_eps);
  // Logits of the requested rows: gather, final norm, vocab-parallel lm_head, all-gather. A step
  // of unfinished prefill chunks has none (the same on every TP rank: the same plan).
  const std::int64_t R = b.logit_rows.size(), VR = slice_.vocab_rows;
  if (R == 0) return nullptr;
  float* rows = w.grow<float>(w.rows, R * H);
  for (std::int64_t i = 0, run; i < R; i += run) {  // one copy per run of consecutive rows (all of a decode step)
    for (run = 1; i + run < R && b.logit_rows[i + run] == b.logit_rows[i] + run;) ++run;
    LS_CUDA_CHECK(cudaMemcpyAsync(rows + i * H, h + static_cast<std::int64_t>(b.logit_rows[i]) * H,
                                  run * H * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  }
  // The norm writes W (x is free by now and holds T >= R rows): lm_head rounds its input to W
  // anyway, and its GEMV reads half the bytes a row.
  W* normed = w.grow<W>(w.x, R * H);
  cuda::rms_norm(ctx_, rows, R, H, ptr<W>(edge_.final_norm), eps, normed);
  float* local = w.grow<float>(w.local_logits, R * VR);
  cuda::linear(ctx_, normed, R, H, ptr<W>(edge_.lm_head), VR, nullptr, local);
  return local;
}

template <HalfFloat W>
float* CudaDenseTransformer::StageIn<W>::gathered_logits(const ForwardBatch& b) {
  float* local = local_logits(b);
  if (!local || tp_.size() == 1) return local;
  const std::int64_t R = b.logit_rows.size(), VR = slice_.vocab_rows;
  float* gathered = ws_->grow<float>(ws_->gathered, tp_.size() * R * VR);
  tp_.all_gather(local, gathered, static_cast<std::size_t>(R * VR), DType::F32);
  return gathered;
}

template <HalfFloat W>
std::span<const float> CudaDenseTransformer::StageIn<W>::forward(const ForwardBatch& b) {
  const float* gathered = gathered_logits(b);
  if (!gathered) return {};
  Workspace& w = *ws_;
  const std::int64_t R = b.logit_rows.size(), VR = slice_.vocab_rows, V = config_.vocab_size;
  const int n = tp_.size();
  const std::size_t count = static_cast<std::size_t>(n * R * VR);
  auto* staged = static_cast<float*>(w.pinned(count * sizeof(float)));
  LS_CUDA_CHECK(cudaMemcpyAsync(staged, gathered, count * sizeof(float), cudaMemcpyDeviceToHost, ctx_.stream()));
  gaps_.finish_and_wait();
  // gathered is [tp, R, VR]; logits are [R, vocab] with rank r's rows at r * VR. At TP1 that
  // is the staged buffer itself; else rows are put together in a buffer kept between steps.
  if (n == 1) return {staged, static_cast<std::size_t>(R * V)};
  host_logits_.resize(R * V);
  assemble_vocab_parallel_logits(staged, n, R, VR, V, host_logits_.data());
  return host_logits_;
}

template <HalfFloat W>
std::vector<int> CudaDenseTransformer::StageIn<W>::forward_argmax(const ForwardBatch& b) {
  const float* local = local_logits(b);
  if (!local) return {};
  Workspace& w = *ws_;
  const std::int64_t R = b.logit_rows.size(), VR = slice_.vocab_rows, V = config_.vocab_size;
  const int n = tp_.size(), me = tp_.rank();
  // Each rank's argmax over its real columns (the vocabulary padding never wins), gathered as
  // [tp, R] (value, local id); then per row the largest value, the lowest rank on ties (rank
  // order is id order, so the lowest id as the sampler picks).
  float* values = w.grow<float>(w.argmax_values, n * R);
  int* ids = w.grow<int>(w.argmax_ids, n * R);
  cuda::argmax(ctx_, local, R, std::clamp<std::int64_t>(V - me * VR, 0, VR), ids + me * R, VR, values + me * R);
  if (n > 1) {  // in place: each rank's part already sits at its offset
    tp_.all_gather(values + me * R, values, static_cast<std::size_t>(R), DType::F32);
    tp_.all_gather(ids + me * R, ids, static_cast<std::size_t>(R), DType::I32);
  }
  const std::size_t count = static_cast<std::size_t>(n * R);
  auto* host_values = static_cast<float*>(w.pinned(count * (sizeof(float) + sizeof(int))));
  auto* host_ids = reinterpret_cast<int*>(host_values + count);
  LS_CUDA_CHECK(cudaMemcpyAsync(host_values, values, count * sizeof(float), cudaMemcpyDeviceToHost, ctx_.stream()));
  LS_CUDA_CHECK(cudaMemcpyAsync(host_ids, ids, count * sizeof(int), cudaMemcpyDeviceToHost, ctx_.stream()));
  gaps_.finish_and_wait();
  std::vector<int> best(R);
  for (std::int64_t i = 0; i < R; ++i) {
    float best_value = host_values[i];
    best[i] = host_ids[i];
    for (int r = 1; r < n; ++r)
      if (host_values[r * R + i] > best_value)
        best_value = host_values[r * R + i], best[i] = host_ids[r * R + i] + static_cast<int>(r * VR);
  }
  return best;
}

template <HalfFloat W>
std::vector<int> CudaDenseTransformer::StageIn<W>::forward_sample(const ForwardBatch& b,
                                                                  std::span<const RowSampling> rows) {
  if (!gpu_sampling_ || config_.vocab_size > kMaxSamplingVocab) return ForwardModel::forward_sample(b, rows);
  const float* gathered = gathered_logits(b);  // the kernel reads the ranks' slices in place
  if (!gathered) return {};
  Workspace& w = *ws_;
  const std::int64_t R = b.logit_rows.size(), VR = slice_.vocab_rows, V = config_.vocab_size;
  LS_CHECK(static_cast<std::int64_t>(rows.size()) == R, "forward_sample: " << rows.size() << " draws for " << R << " rows");
  const int n = tp_.size();
  const cudaStream_t stream = ctx_.stream();
  auto* draws = w.grow<RowSampling>(w.draws, R);
  int* drawn = w.grow<int>(w.drawn, R);
  auto* host = static_cast<int*>(w.pinned(R * std::max(sizeof(RowSampling), sizeof(int))));
  std::memcpy(host, rows.data(), R * sizeof(RowSampling));
  LS_CUDA_CHECK(cudaMemcpyAsync(draws, host, R * sizeof(RowSampling), cudaMemcpyHostToDevice, stream));
  cuda::sample_rows(ctx_, gathered, R, V, n, VR, draws, drawn);
  LS_CUDA_CHECK(cudaMemcpyAsync(host, drawn, R * sizeof(int), cudaMemcpyDeviceToHost, stream));
  gaps_.finish_and_wait();
  return {host, host + R};
}

}  // namespace lockstep
