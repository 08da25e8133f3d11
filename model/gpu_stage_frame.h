// What every CUDA stage (dense, deepseek_v3) does around its layers, in one place: the step's
// batch on the GPU (token ids, positions, block tables, KV slots), the embedding or the previous
// stage's activations in and the next stage's out, CUDA graphs of decode steps, and on the last
// stage the logits: copied to the host, or argmax and sampling on the GPU. A stage derives from
// GpuStageFrame<W> (W: its weights' type, bf16 or fp16) and supplies its layers (run_layers),
// its KV cache and its own step buffers. Only in CUDA builds.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "comm/collectives.h"
#include "kernels/cuda_graph_cache.h"
#include "kernels/device_buffer.h"
#include "kernels/dtype.h"
#include "kernels/gpu_context.h"
#include "kernels/step_gap_meter.h"
#include "model/gpu_stage.h"
#include "model/layer_weights.h"
#include "model/pipeline_stages.h"
#include "model/weight_upload.h"

namespace lockstep {

// Decode steps of up to this many sequences replay captured CUDA graphs (unless --enforce-eager).
constexpr std::int64_t kMaxGraphTokens = 64;

// A step's buffers, grown to the largest step seen (reserve() sizes them exactly at start-up).
// A buffer that moves bumps `generation`, so that graphs captured with the old address are
// captured again. Stages keep their own DeviceBuffers and grow them here too.
struct StepWorkspace {
  // `count` elements of T (contents are not kept), with half as much again for the steps after.
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
  T* upload(DeviceBuffer& b, const std::vector<T>& host, cudaStream_t stream);
  // Pinned host memory for what a step copies back: pageable copies run at a fraction of PCIe
  // speed, and at batch 32 x 152k vocabulary the logits are 19 MB.
  void* pinned(std::size_t bytes);
  ~StepWorkspace();

  std::uint64_t generation = 0;
  // The residual stream h (fp32), the normed x that feeds linears (W), a sublayer's output (fp32).
  DeviceBuffer h, x, out;
  DeviceBuffer ids, positions, seq_of, tables, slots;  // the batch
  DeviceBuffer rows, local_logits, gathered, argmax_values, argmax_ids, draws, drawn;  // the last stage's
  void* host = nullptr;
  std::size_t host_bytes = 0;
};

template <HalfFloat W>
class GpuStageFrame : public GpuStage {
 public:
  ~GpuStageFrame() override;
  // Whether decode steps replay graphs: not with --enforce-eager, and not where the stage's decode
  // step waits on the host (graph_safe).
  bool cuda_graphs() const override { return graphs_ != nullptr && graph_safe(1); }
  std::span<const float> forward(const ForwardBatch& batch) override;
  // Argmax on the GPU: only [tp, rows] (value, id) pairs cross NVLink and PCIe.
  std::vector<int> forward_argmax(const ForwardBatch& batch) override;
  // Drawn on the GPU (cuda::sample_rows on the gathered logits: only the ids come back); on the
  // host for vocabularies over 2^18, or with LOCKSTEP_GPU_SAMPLING=0 (for comparison).
  std::vector<int> forward_sample(const ForwardBatch& batch, std::span<const RowSampling> rows) override;
  const ModelConfig& config() const override { return config_; }
  int block_size() const override { return block_size_; }
  int num_kv_blocks() const override { return num_kv_blocks_; }

 protected:
  // Uploads the stage's edge weights (embedding, final norm, lm_head, RoPE frequencies) through
  // `uploader`. cuda_graphs: decode steps replay CUDA graphs (false: --enforce-eager; also off
  // with MPI-staged collectives across ranks, which wait on the host).
  GpuStageFrame(const ModelConfig& config, const WeightSource& weights, PinnedUploader& uploader, Collectives& tp,
                Collectives& pp, const LayerRange& layers, int gpu, int block_size, bool cuda_graphs);

  // The stage's layers over the step's T tokens, only enqueued on ctx_'s stream (no host waits
  // or allocations once reserve_workspace has run, so a decode step can be captured; a stage
  // whose step needs the host for some T says so in graph_safe): h [T, hidden] holds the
  // stage's input and is left holding its output; x ([T, hidden] in W) and out ([T, hidden]
  // fp32) are free for the layers.
  virtual void run_layers(std::int64_t T, float* h, W* x, float* out) = 0;
  // Whether run_layers over T tokens can be captured (default: always).
  virtual bool graph_safe(std::int64_t) const { return true; }
  // The frame's step buffers at their largest, and the context's scratch at least `scratch`
  // bytes (what the stage's ops need), for reserve_workspace.
  void reserve_frame_workspace(std::int64_t max_tokens, std::int64_t max_rows, std::size_t scratch);
  void set_num_kv_blocks(int n) { num_kv_blocks_ = n; }

  const int* positions() const { return static_cast<const int*>(ws_.positions.data()); }
  const int* seq_of() const { return static_cast<const int*>(ws_.seq_of.data()); }
  const int* block_tables() const { return static_cast<const int*>(ws_.tables.data()); }
  const std::int64_t* kv_slots() const { return static_cast<const std::int64_t*>(ws_.slots.data()); }
  const float* inv_freq() const { return static_cast<const float*>(edge_.inv_freq.data()); }

  ModelConfig config_;
  TensorParallelSlice slice_;
  Collectives& tp_;
  Collectives& pp_;
  LayerRange layers_;
  int block_size_;
  GpuContext ctx_;
  StepWorkspace ws_;
  // This step's shape, as the attention kernels take it.
  int max_blocks_ = 0;  // the block tables' width (padded to a power of two in a graph)
  int max_context_ = 0;  // the longest context (largest position + 1; the padded width's in a graph)
  std::int64_t query_run_ = 1;  // the longest run of one sequence's tokens
  std::int64_t single_runs_ = 0;  // its leading tokens that are runs of one (decodes, scheduled first)

 private:
  // Runs the stage; on the last stage returns the logit rows' vocab-parallel logits [rows,
  // vocab_rows] on the GPU, else (or with no rows) nullptr.
  float* local_logits(const ForwardBatch& batch);
  // The same on every TP rank, gathered: [tp, rows, vocab_rows] on the GPU, or nullptr.
  float* gathered_logits(const ForwardBatch& batch);
  // Embedding (or the previous stage's activations), run_layers, and on to the next stage.
  void run_stage(std::int64_t T);

  int num_kv_blocks_ = 0;
  StepGapMeter gaps_;  // the host's share of a step, logged at debug level
  GpuStageEdges edge_;
  std::unique_ptr<CudaGraphCache> graphs_;  // null: eager
  bool gpu_sampling_ = false;
  std::vector<float> host_logits_;  // the last forward's at TP > 1 (at TP1 it returns the pinned staging)
};

}  // namespace lockstep
