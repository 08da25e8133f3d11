// The deepseek_v3 forward pass of one rank on its GPU (CUDA backend): DeepseekV3Transformer's
// stage, slices and batch contract (the CPU reference), with the weights and the latent cache
// (in the model's dtype) in device memory and the ops on the collectives' stream. The MoE's
// routing is chosen on the host (cpu::route_experts over the router's logits, copied back), each
// layer's experts then run over their tokens: so steps are eager (no CUDA graphs), and a
// first version: its kernels are straightforward, not tuned. Only in CUDA builds.
#pragma once

#include <memory>

#include "model/gpu_stage.h"

namespace lockstep {

class CudaDeepseekV3Transformer final : public GpuStage {
 public:
  CudaDeepseekV3Transformer(const ModelConfig& config, const WeightSource& weights, Collectives& tp, Collectives& pp,
                            const LayerRange& layers, int gpu, int block_size);
  ~CudaDeepseekV3Transformer() override;

  // The latent and the RoPE key of every layer, in the model's dtype.
  std::uint64_t kv_block_bytes() const override;
  void allocate_kv_cache(int num_blocks) override;
  void reserve_workspace(int max_tokens, int max_rows) override;
  bool cuda_graphs() const override { return false; }

  // The logits come to the host; argmax and sampling are ForwardModel's (on the host).
  std::span<const float> forward(const ForwardBatch& batch) override;
  const ModelConfig& config() const override;
  int block_size() const override;
  int num_kv_blocks() const override;

 private:
  // The stage in its weight type W (bf16 or fp16), chosen once from config.dtype.
  template <HalfFloat W>
  class StageIn;
  std::unique_ptr<GpuStage> stage_;
};

}  // namespace lockstep
