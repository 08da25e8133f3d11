// Everything a model-running subcommand (batch, serve) sets up on every rank, from vLLM-named
// flags: the rank grid, the checkpoint (or --load-format dummy weights), this rank's slice of
// the model, a KV cache sized by --kv-cache-memory, and on rank 0 the tokenizer, chat
// template, block manager, scheduler and the lock-step engine. Other ranks follow rank 0.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "app/engine/lockstep_engine.h"
#include "app/openai/openai_request.h"
#include "app/parallel_options.h"
#include "comm/comm_groups.h"
#include "model/safetensors_reader.h"

namespace lockstep {

class MpiEnvironment;

struct ModelOptions {
  ParallelOptions parallel;
  std::string model;
  std::string tokenizer;            // default: --model
  std::string served_model_name;    // default: --model
  std::string load_format = "auto";  // auto | safetensors | hdf5 | dummy
  std::string dtype = "auto";
  std::string device = "auto";      // auto | cpu | cuda (auto: cuda when every rank has a GPU)
  int max_model_len = 0;            // 0: the config's max_position_embeddings
  int max_num_seqs = 256;
  int max_num_batched_tokens = 8192;
  int block_size = 16;
  std::string kv_cache_memory = "4G";  // CPU backend (as vLLM's VLLM_CPU_KVCACHE_SPACE)
  double gpu_memory_utilization = 0.9;
  std::string kv_cache_dtype = "auto";  // auto | fp8 | fp8_e4m3 | fp8_e5m2
  bool enforce_eager = false;
  bool enable_prefix_caching = true;
  bool no_enable_prefix_caching = false;
  std::uint64_t seed = 0;
  std::string pipeline_layer_partition;  // "20,20,21" (vLLM: VLLM_PP_LAYER_PARTITION)
  std::string chat_template;  // a file or the template itself, instead of the tokenizer's (vLLM's --chat-template)
  std::string reasoning_parser = "auto";  // auto | deepseek_r1 | none
  std::string generation_config = "auto";  // auto | vllm | a directory (vLLM's --generation-config)
  std::string override_generation_config;  // a JSON object on top of it
  bool trust_remote_code = false;        // accepted for vLLM command lines; no effect
  bool disable_custom_all_reduce = false;
};

void add_model_options(CLI::App& cmd, ModelOptions& o);

// Throws std::runtime_error (CheckpointError, TokenizerError, ...) with a clear message.
class ModelRuntime {
 public:
  // nullptr after rank 0 printed why the world does not fit the layout.
  static std::unique_ptr<ModelRuntime> create(const MpiEnvironment& env, const ModelOptions& o);
  // create() on every rank, agreed: nullptr on every rank if any rank failed (rank 0 or the
  // failing rank prints "lockstep COMMAND: error: ..."), so no rank is left waiting.
  static std::unique_ptr<ModelRuntime> create_everywhere(const MpiEnvironment& env, const ModelOptions& o,
                                                         const char* command);
  ~ModelRuntime();

  bool leader() const { return grid_->world_rank() == 0; }
  bool on_gpu() const { return on_gpu_; }  // the CUDA backend (--device cuda, or auto on GPUs)
  LockstepEngine& engine() { return *engine_; }
  Scheduler& scheduler() { return *scheduler_; }         // rank 0
  BlockManager& blocks() { return *blocks_; }            // rank 0
  const ModelContext& context() const { return context_; }  // rank 0
  const ModelConfig& config() const { return config_; }

 private:
  ModelRuntime() = default;
  std::unique_ptr<RankGrid> grid_;
  std::unique_ptr<CommGroups> groups_;
  ModelConfig config_;
  std::unique_ptr<SafetensorsCheckpoint> checkpoint_;
  std::unique_ptr<WeightSource> weights_;
  std::unique_ptr<ForwardModel> model_;
  std::unique_ptr<BlockManager> blocks_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<LockstepEngine> engine_;
  ModelContext context_;
  bool on_gpu_ = false;
};

}  // namespace lockstep
