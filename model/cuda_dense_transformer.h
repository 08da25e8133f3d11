// The qwen2 / llama forward pass of one rank on its GPU (CUDA backend): the same stage, slices
// and batch contract as DenseTransformer (the CPU reference), with weights and the paged KV
// cache (bf16, as transformers and vLLM keep it) in device memory, the cuda:: ops on the collectives' stream (so NCCL all-reduces and
// pipeline send/recv are ordered with the kernels without host waits), and the logits copied
// back to the host for the sampler. Only in CUDA builds; needs NCCL collectives.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/collectives.h"
#include "kernels/cuda_graph_cache.h"
#include "kernels/device_buffer.h"
#include "kernels/gpu_context.h"
#include "model/forward_model.h"
#include "model/layer_weights.h"
#include "model/pipeline_stages.h"

namespace lockstep {

class CudaDenseTransformer final : public ForwardModel {
 public:
  // Loads this rank's weights onto `gpu`. The KV cache comes later (allocate_kv_cache), once
  // every rank knows how much memory is left.
  // cuda_graphs: decode steps replay CUDA graphs of the layers (false: --enforce-eager).
  CudaDenseTransformer(const ModelConfig& config, const WeightSource& weights, Collectives& tp, Collectives& pp,
                       const LayerRange& layers, int gpu, int block_size, bool cuda_graphs = true);
  ~CudaDenseTransformer() override;

  // Bytes of KV cache one block takes on this rank (all its layers, K and V).
  std::uint64_t kv_block_bytes() const;
  void allocate_kv_cache(int num_blocks);
  // Device memory a step of up to `max_tokens` tokens and `max_rows` sampled rows needs besides
  // weights and KV cache (activations, cuBLAS scratch, gathered logits), with some headroom.
  std::uint64_t workspace_bytes(int max_tokens, int max_rows) const;

  std::span<const float> forward(const ForwardBatch& batch) override;
  // Argmax on the GPU: only [tp, rows] (value, id) pairs cross NVLink and PCIe.
  std::vector<int> forward_argmax(const ForwardBatch& batch) override;
  // Drawn on the GPU (cuda::sample_rows on the gathered logits: only the ids come back); on the
  // host for vocabularies over 2^18, or with LOCKSTEP_GPU_SAMPLING=0 (for comparison).
  std::vector<int> forward_sample(const ForwardBatch& batch, std::span<const RowSampling> rows) override;
  const ModelConfig& config() const override { return config_; }
  int block_size() const override { return block_size_; }
  int num_kv_blocks() const override { return num_kv_blocks_; }

 private:
  struct Layer;
  struct Workspace;
  void attention(Layer& L, std::int64_t T, const bf16* x, float* out);
  void mlp(Layer& L, std::int64_t T, const bf16* x, float* out);
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
  GpuContext ctx_;
  DeviceBuffer embed_, lm_head_, final_norm_, inv_freq_;
  std::vector<std::unique_ptr<Layer>> layer_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<CudaGraphCache> graphs_;  // null: eager
  bool gpu_sampling_ = false;
  std::vector<float> host_logits_;  // the last forward's at TP > 1 (at TP1 it returns the pinned staging)
};

}  // namespace lockstep
