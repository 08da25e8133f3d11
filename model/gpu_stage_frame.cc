// GpuStageFrame (see gpu_stage_frame.h).
#include "model/gpu_stage_frame.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/dense_ops.h"
#include "kernels/sampling.h"

namespace lockstep {
namespace {

// One token per sequence, each sampled: the steps whose shape recurs step after step.
bool is_decode_step(const ForwardBatch& b) {
  const std::size_t T = b.token_ids.size();
  if (T == 0 || b.logit_rows.size() != T) return false;
  for (std::size_t i = 0; i < T; ++i)
    if (b.logit_rows[i] != static_cast<int>(i) || b.seq_of_token[i] != static_cast<int>(i)) return false;
  return true;
}

template <HalfFloat W>
const W* ptr(const DeviceBuffer& b) {
  return b.bytes() ? static_cast<const W*>(b.data()) : nullptr;
}

}  // namespace

template <typename T>
T* StepWorkspace::upload(DeviceBuffer& b, const std::vector<T>& host_values, cudaStream_t stream) {
  T* d = grow<T>(b, static_cast<std::int64_t>(host_values.size()));
  if (!host_values.empty())
    LS_CUDA_CHECK(
        cudaMemcpyAsync(d, host_values.data(), host_values.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
  return d;
}
template int* StepWorkspace::upload<int>(DeviceBuffer&, const std::vector<int>&, cudaStream_t);
template std::int64_t* StepWorkspace::upload<std::int64_t>(DeviceBuffer&, const std::vector<std::int64_t>&,
                                                           cudaStream_t);
template float* StepWorkspace::upload<float>(DeviceBuffer&, const std::vector<float>&, cudaStream_t);

void* StepWorkspace::pinned(std::size_t bytes) {
  if (bytes > host_bytes) {
    if (host) LS_CUDA_CHECK(cudaFreeHost(host));
    host_bytes = bytes + bytes / 2;
    LS_CUDA_CHECK(cudaMallocHost(&host, host_bytes));
  }
  return host;
}

StepWorkspace::~StepWorkspace() {
  if (host) cudaFreeHost(host);
}

template <HalfFloat W>
GpuStageFrame<W>::GpuStageFrame(const ModelConfig& c, const WeightSource& w, PinnedUploader& uploader,
                                Collectives& tp, Collectives& pp, const LayerRange& layers, int gpu, int block_size,
                                bool cuda_graphs)
    : config_(c),
      slice_(TensorParallelSlice::make(c, tp.rank(), tp.size())),
      tp_(tp),
      pp_(pp),
      layers_(layers),
      block_size_(block_size),
      ctx_(gpu, tp.stream()),
      gaps_(ctx_.stream()),
      // Staged collectives (ranks sharing a GPU) wait on the host, which a captured graph cannot.
      graphs_(cuda_graphs && !(tp.backend() == CommBackend::MpiStaged && tp.size() * pp.size() > 1)
                  ? std::make_unique<CudaGraphCache>()
                  : nullptr) {
  const char* gpu_sampling = std::getenv("LOCKSTEP_GPU_SAMPLING");
  gpu_sampling_ = !(gpu_sampling && std::string(gpu_sampling) == "0");
  LS_CHECK(tp.stream() && tp.stream() == pp.stream(),
           "the CUDA backend needs device-buffer collectives (NCCL or MPI staged) that share one stream");
  edge_ = upload_stage_edges(uploader, c, w, slice_, pp.rank() == 0, pp.rank() == pp.size() - 1, dtype_of<W>);
}

template <HalfFloat W>
GpuStageFrame<W>::~GpuStageFrame() {
  cudaStreamSynchronize(ctx_.stream());  // nothing of ours (graphs, buffers) is freed while in use
}

template <HalfFloat W>
void GpuStageFrame<W>::reserve_frame_workspace(std::int64_t T, std::int64_t R, std::size_t scratch) {
  StepWorkspace& w = ws_;
  const std::int64_t H = config_.hidden_size, VR = slice_.vocab_rows;
  w.reserve<float>(w.h, T * H);
  w.reserve<W>(w.x, std::max(T, R) * H);  // also the final norm's rows
  w.reserve<float>(w.out, T * H);
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
void GpuStageFrame<W>::run_stage(std::int64_t T) {
  StepWorkspace& w = ws_;
  const std::int64_t H = config_.hidden_size;
  float* h = static_cast<float*>(w.h.data());
  if (pp_.rank() == 0) {
    cuda::embedding(ctx_, static_cast<const int*>(w.ids.data()), T, ptr<W>(edge_.embed), slice_.vocab_begin,
                    slice_.vocab_rows, H, h);
    if (tp_.size() > 1) tp_.all_reduce(h, h, static_cast<std::size_t>(T * H), DType::F32, ReduceOp::Sum);
  } else {
    pp_.recv(h, static_cast<std::size_t>(T * H), DType::F32, pp_.rank() - 1);
  }
  run_layers(T, h, static_cast<W*>(w.x.data()), static_cast<float*>(w.out.data()));
  if (pp_.rank() < pp_.size() - 1) pp_.send(h, static_cast<std::size_t>(T * H), DType::F32, pp_.rank() + 1);
}

template <HalfFloat W>
float* GpuStageFrame<W>::local_logits(const ForwardBatch& b) {
  LS_CHECK(num_kv_blocks_ > 0, "forward before allocate_kv_cache");
  StepWorkspace& w = ws_;
  const cudaStream_t stream = ctx_.stream();
  const std::int64_t T = b.token_ids.size(), H = config_.hidden_size;
  // A decode step of up to kMaxGraphTokens sequences replays the graph of its shape: its block
  // tables padded to a power-of-two width and its attention split for that width, so that the
  // steps of a batch share one graph as their contexts grow.
  const bool graph = graphs_ && T <= kMaxGraphTokens && is_decode_step(b) && graph_safe(T);
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
    graphs_->run(key, w.generation + ctx_.scratch_generation(), stream, [&] { run_stage(T); });
  } else {
    run_stage(T);
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
float* GpuStageFrame<W>::gathered_logits(const ForwardBatch& b) {
  float* local = local_logits(b);
  if (!local || tp_.size() == 1) return local;
  const std::int64_t R = b.logit_rows.size(), VR = slice_.vocab_rows;
  float* gathered = ws_.grow<float>(ws_.gathered, tp_.size() * R * VR);
  tp_.all_gather(local, gathered, static_cast<std::size_t>(R * VR), DType::F32);
  return gathered;
}

template <HalfFloat W>
std::span<const float> GpuStageFrame<W>::forward(const ForwardBatch& b) {
  const float* gathered = gathered_logits(b);
  if (!gathered) return {};
  StepWorkspace& w = ws_;
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
std::vector<int> GpuStageFrame<W>::forward_argmax(const ForwardBatch& b) {
  const float* local = local_logits(b);
  if (!local) return {};
  StepWorkspace& w = ws_;
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
std::vector<int> GpuStageFrame<W>::forward_sample(const ForwardBatch& b, std::span<const RowSampling> rows) {
  if (!gpu_sampling_ || config_.vocab_size > kMaxSamplingVocab) return ForwardModel::forward_sample(b, rows);
  const float* gathered = gathered_logits(b);  // the kernel reads the ranks' slices in place
  if (!gathered) return {};
  StepWorkspace& w = ws_;
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

template class GpuStageFrame<bf16>;
template class GpuStageFrame<fp16>;

}  // namespace lockstep
