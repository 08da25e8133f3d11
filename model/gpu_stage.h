// What the app needs of a CUDA-backend stage besides ForwardModel: its KV cache sized after the
// weights are loaded, its step buffers reserved before that, and whether it replays CUDA
// graphs; and the stage for a config's architecture (make_cuda_deepseek_v3_stage for
// deepseek_v3, make_cuda_dense_stage for qwen2, qwen3 and llama). Only in CUDA builds.
#pragma once

#include <cstdint>
#include <memory>

#include "comm/collectives.h"
#include "model/forward_model.h"
#include "model/pipeline_stages.h"
#include "model/weight_source.h"

namespace lockstep {

class GpuStage : public ForwardModel {
 public:
  // Bytes of KV cache one block takes on this rank (all its layers).
  virtual std::uint64_t kv_block_bytes() const = 0;
  virtual void allocate_kv_cache(int num_blocks) = 0;
  // Allocates, at their exact sizes, the buffers a step of up to `max_tokens` tokens and
  // `max_rows` sampled rows needs besides weights and KV cache, so that they are counted when the
  // KV cache is sized. What a step may still allocate besides is kUnreservedBytes at most.
  virtual void reserve_workspace(int max_tokens, int max_rows) = 0;
  static constexpr std::uint64_t kUnreservedBytes = std::uint64_t{512} << 20;
  // Whether decode steps replay CUDA graphs.
  virtual bool cuda_graphs() const = 0;
};

// Loads this rank's weights onto `gpu` (config.dtype, BF16 or F16); the KV cache comes later.
std::unique_ptr<GpuStage> make_gpu_stage(const ModelConfig& config, const WeightSource& weights, Collectives& tp,
                                         Collectives& pp, const LayerRange& layers, int gpu, int block_size,
                                         bool cuda_graphs = true);

}  // namespace lockstep
