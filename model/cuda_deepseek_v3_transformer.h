// The deepseek_v3 forward pass of one rank on its GPU (CUDA backend): DeepseekV3Transformer's
// stage, slices and batch contract (the CPU reference), with the weights and the latent cache
// (in the model's dtype) in device memory and the ops on the collectives' stream; the batch,
// graphs and logits are GpuStageFrame's (model/gpu_stage_frame.h). The MoE routes on the GPU
// (kernels/moe_experts.h); steps of up to kMaxGraphTokens tokens run the chosen experts as
// grouped GEMVs without a host wait, so decode steps replay CUDA graphs; bigger steps copy the
// experts' token counts back once a layer and run a GEMM per expert. Only in CUDA builds.
#pragma once

#include <memory>

#include "model/gpu_stage.h"

namespace lockstep {

std::unique_ptr<GpuStage> make_cuda_deepseek_v3_stage(const ModelConfig& config, const WeightSource& weights,
                                                      Collectives& tp, Collectives& pp, const LayerRange& layers,
                                                      int gpu, int block_size, bool cuda_graphs);

}  // namespace lockstep
