// The qwen2 / qwen3 / llama forward pass of one rank on its GPU (CUDA backend): the same stage,
// slices and batch contract as DenseTransformer (the CPU reference), with weights and the paged
// KV cache (in the model's dtype, bf16 or fp16, as transformers and vLLM keep it, or fp8 with
// --kv-cache-dtype) in device memory, and the cuda:: ops on the collectives' stream (so NCCL
// all-reduces and pipeline send/recv are ordered with the kernels without host waits). The
// batch, graphs and logits are GpuStageFrame's (model/gpu_stage_frame.h). Only in CUDA builds;
// needs device-buffer collectives.
#pragma once

#include <memory>

#include "model/gpu_stage.h"

namespace lockstep {

// Loads this rank's weights onto `gpu`, in config.dtype (BF16 or F16, else CheckpointError).
// The KV cache comes later (allocate_kv_cache), once every rank knows how much memory is left.
// cuda_graphs: decode steps replay CUDA graphs of the layers (false: --enforce-eager; also off
// with MPI-staged collectives across ranks, which wait on the host).
std::unique_ptr<GpuStage> make_cuda_dense_stage(const ModelConfig& config, const WeightSource& weights,
                                                Collectives& tp, Collectives& pp, const LayerRange& layers, int gpu,
                                                int block_size, bool cuda_graphs);

}  // namespace lockstep
