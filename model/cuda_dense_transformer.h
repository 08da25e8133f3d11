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
#include "model/forward_model.h"
#include "model/layer_weights.h"
#include "model/pipeline_stages.h"

namespace lockstep {

class CudaDenseTransformer final : public ForwardModel {
 public:
  // Loads this rank's weights onto `gpu`, in config.dtype (BF16 or F16, else CheckpointError).
  // The KV cache comes later (allocate_kv_cache), once every rank knows how much memory is left.
  // cuda_graphs: decode steps replay CUDA graphs of the layers (false: --enforce-eager; also
  // off with MPI-staged collectives across ranks, which wait on the host).
  CudaDenseTransformer(const ModelConfig& config, const WeightSource& weights, Collectives& tp, Collectives& pp,
                       const LayerRange& layers, int gpu, int block_size, bool cuda_graphs = true);
  ~CudaDenseTransformer() override;

  // Bytes of KV cache one block takes on this rank (all its layers, K and V).
  std::uint64_t kv_block_bytes() const;
  void allocate_kv_cache(int num_blocks);
  // Allocates, at their exact sizes, the buffers a step of up to `max_tokens` tokens and
  // `max_rows` sampled rows needs besides weights and KV cache (activations, the rounded
  // attention output, logits, the sampler's keys), so that they are counted when the KV cache
  // is sized and never grow afterwards. What a step may still allocate besides (cuBLAS and
  // NCCL internals, the attention's split partials, block tables) is kUnreservedBytes at most.
  void reserve_workspace(int max_tokens, int max_rows);
  static constexpr std::uint64_t kUnreservedBytes = std::uint64_t{512} << 20;
  // Whether decode steps replay CUDA graphs (what the constructor decided from cuda_graphs).
  bool cuda_graphs() const;

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
  // ForwardModel with the calls above, which this class forwards to.
  class Stage;
  template <HalfFloat W>
  class StageIn;
  std::unique_ptr<Stage> stage_;
};

}  // namespace lockstep
