// Writes a checkpoint in the hub layout for any supported config.json: tensors (F16 when its
// torch_dtype is float16, else BF16) named and
// shaped as the hub publishes qwen2/qwen3/llama and deepseek_v3 models (one tensor per expert), sharded into model-0000k-of-0000n.safetensors
// with model.safetensors.index.json. The values are --load-format dummy's for the same seed, so
// a written checkpoint and `--load-format dummy --seed S` run the same model. Used by
// `lockstep make-checkpoint` (the demo model, test and benchmark checkpoints).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace lockstep {

struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  bool fp32 = false;  // stored as F32 (deepseek_v3's routers' correction biases, as the hub stores them)
};

// Every tensor the forward pass reads for this config, in transformers' naming.
std::vector<TensorSpec> checkpoint_tensors(const ModelConfig& config);

struct CheckpointWriteOptions {
  std::uint64_t seed = 0;
  std::uint64_t max_shard_bytes = 2ull << 30;
  // Called after each tensor: (bytes written so far, total bytes).
  std::function<void(std::uint64_t, std::uint64_t)> progress;
};

// Writes the weight shards and the index into `dir` (which must exist). Throws
// CheckpointError on an I/O failure.
void write_dummy_checkpoint(const ModelConfig& config, const std::string& dir, const CheckpointWriteOptions& options);

}  // namespace lockstep
