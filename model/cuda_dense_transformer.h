// The qwen2 / llama forward pass of one rank on its GPU (CUDA backend): the same stage, slices
// and batch contract as DenseTransformer (the CPU reference), with weights and the paged KV
// cache (in the model's dtype, bf16 or fp16, as transformers and vLLM keep it, or fp8 with
// --kv-cache-dtype) in device memory, the cuda:: ops on the collectives' stream (so NCCL all-reduces and pipeline
// send/recv are ordered with the kernels without host waits), and the logits copied back to
// the host for the sampler. Only in CUDA builds; needs NCCL collectives.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "comm/collectives.h"
#include "model/gpu_stage.h"
#include "model/layer_weights.h"
#include "model/pipeline_stages.h"

namespace lockstep {

class CudaDenseTransformer final : public GpuStage {
 public:
  // Loads this rank's weights onto `gpu`, in config.dtype (BF16 or F16, else CheckpointError).
  // The KV cache comes later (allocate_kv_cache), once every rank knows how much memory is left.
  // cuda_graphs: decode steps replay CUDA graphs of the layers (false: --enforce-eager; also
  // off with MPI-staged collectives across ranks, which wait on the host).
  CudaDenseTransformer(const ModelConfig& config, const WeightSource& weights, Collectives& tp, Collectives& pp,
                       const LayerRange& layers, int gpu, int block_size, bool cuda_graphs = true);
  ~CudaDenseTransformer() override;

  // K and V of every layer.
  std::uint64_t kv_block_bytes() const override;
  void allocate_kv_cache(int num_blocks) override;
  // Activations, the rounded attention output, logits, the sampler's keys (what is left
  // unreserved: cuBLAS and NCCL internals, the attention's split partials, block tables).
  void reserve_workspace(int max_tokens, int max_rows) override;
  bool cuda_graphs() const override;

  std::span<const float> forward(const ForwardBatch& batch) override;
  // Argmax on the GPU: only [tp, rows] (value, id) pairs cross NVLink and PCIe.
  std::vector<int> forward_argmax(const ForwardBatch& batch) override;
  // Drawn on the GPU (cuda::sample_rows on the gathered logits: only the ids come back); on the
  // host for vocabularies over 2^18, or with LOCKSTEP_GPU_SAMPLING=0 (for comparison).
  std::vector<int> forward_sample(const ForwardBatch& batch, std::span<const RowSampling> rows) override;
  const ModelConfig& config() const override;
  int block_size() const override;
  int num_kv_blocks() const override;

 private:
  // The stage in its weight type W (bf16 or fp16), chosen once from config.dtype: a
  // GpuStage with the calls above, which this class forwards to.
  template <HalfFloat W>
  class StageIn;
  std::unique_ptr<GpuStage> stage_;
};

}  // namespace lockstep
