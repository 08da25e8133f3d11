// ModelRuntime (see model_runtime.h).
#include "app/model_runtime.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iomanip>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/commbench/byte_size.h"
#include "app/commbench/cpu_affinity.h"
#include "app/engine/step_watchdog.h"
#include "app/model_dtype.h"
#include "comm/host_broadcast.h"
#include "comm/mpi_check.h"
#include "comm/mpi_env.h"
#include "kernels/dense_ops.h"
#include "kernels/device_buffer.h"
#include "kernels/fp8.h"
#include "kernels/log.h"
#include "model/chat_template/chat_template_option.h"
#include "model/cpu_stage.h"
#include "model/dense_transformer.h"
#include "model/hdf5_checkpoint.h"
#if LOCKSTEP_WITH_CUDA
#include "model/gpu_stage.h"
#endif

namespace lockstep {

void add_model_options(CLI::App& cmd, ModelOptions& o) {
  add_parallel_options(cmd, o.parallel);
  cmd.add_option("--model", o.model, "Checkpoint directory (config.json, safetensors, tokenizer files)")->required();
  cmd.add_option("--tokenizer", o.tokenizer, "Directory with tokenizer.json (default: --model)");
  cmd.add_option("--served-model-name", o.served_model_name, "Name clients use in 'model' (default: --model)");
  cmd.add_option("--load-format", o.load_format, "auto: the checkpoint's model.h5 (`lockstep convert`) if it has "
                                                  "one, else its safetensors; safetensors; hdf5; dummy: random weights "
                                                  "at the config's shapes (benchmarks)")
      ->check(CLI::IsMember({"auto", "safetensors", "hdf5", "dummy"}));
  cmd.add_option("--dtype", o.dtype, "Weights, KV cache and GEMM inputs: auto (the checkpoint's float16 or "
                                    "bfloat16; float32 checkpoints run in bfloat16, or float16 on GPUs before Ampere), "
                                    "bfloat16, half / float16. The CPU backend computes in fp32 over them")
      ->check(CLI::IsMember(kDTypeFlagNames));
  cmd.add_option("--device", o.device, "Where the model runs: cuda (one GPU per rank, NCCL), cpu (MPI), or auto "
                                      "(cuda when every rank has a GPU)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd.add_option("--max-model-len", o.max_model_len, "Context length (default: the config's)");
  cmd.add_option("--max-num-seqs", o.max_num_seqs, "Sequences in one step at most")->check(CLI::PositiveNumber);
  cmd.add_option("--max-num-batched-tokens", o.max_num_batched_tokens, "Tokens in one step at most (chunked prefill)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--block-size", o.block_size, "Tokens per KV-cache block")->check(CLI::PositiveNumber);
  cmd.add_option("--kv-cache-memory", o.kv_cache_memory, "KV-cache memory per rank on the CPU backend, e.g. 4G");
  cmd.add_option("--gpu-memory-utilization", o.gpu_memory_utilization, "GPU memory fraction (CUDA backend)")
      ->check(CLI::Validator(
          [](const std::string& v) {
            const double f = std::strtod(v.c_str(), nullptr);
            return f > 0.0 && f <= 1.0 ? std::string() : "--gpu-memory-utilization " + v + " is not in (0, 1]";
          },
          "(0, 1]"));
  cmd.add_option("--kv-cache-dtype", o.kv_cache_dtype,
                 "KV cache values: auto (the model's dtype; bfloat16 for a bfloat16 model), fp8 / fp8_e4m3 or "
                 "fp8_e5m2 (half the bytes: twice the "
                 "tokens, and decode attention reads half as much; values stored unscaled, saturating at 448 / "
                 "57344, as vLLM without kv scales). The CPU backend keeps fp32 values rounded to the format")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kKvCacheDtypeNames), std::end(kKvCacheDtypeNames))));
  cmd.add_flag("--enforce-eager", o.enforce_eager, "Launch every kernel (no CUDA graphs for decode steps)");
  cmd.add_flag("--enable-prefix-caching", o.enable_prefix_caching, "Reuse KV blocks of shared prompt prefixes (default on)");
  cmd.add_flag("--no-enable-prefix-caching", o.no_enable_prefix_caching, "Turn prefix caching off");
  cmd.add_option("--seed", o.seed, "Seed of requests that give none");
  cmd.add_option("--pipeline-layer-partition", o.pipeline_layer_partition,
                 "Layers per pipeline stage, e.g. 16,15,15,15 (default: even, remainder to the first stages)");
  cmd.add_option("--chat-template", o.chat_template,
                 "Chat template instead of the tokenizer's: a Jinja file, or the template itself (its \\n, \\t, ... "
                 "escapes decoded, as vLLM); the tokenizer's special tokens still apply");
  cmd.add_option("--reasoning-parser", o.reasoning_parser, "deepseek_r1: <think> text goes to reasoning (and "
                                                           "reasoning_content); auto: on when the chat template opens <think>")
      ->check(CLI::IsMember({"auto", "deepseek_r1", "none"}));
  cmd.add_option("--generation-config", o.generation_config,
                 "Default sampling parameters of requests that give none: auto (the model's generation_config.json, "
                 "as vLLM), vllm (OpenAI's defaults), or a directory holding a generation_config.json");
  cmd.add_option("--override-generation-config", o.override_generation_config,
                 "JSON object over the generation config, e.g. '{\"temperature\": 0.5}'");
  cmd.add_flag("--trust-remote-code", o.trust_remote_code, "Accepted for vLLM command lines; has no effect");
  cmd.add_flag("--disable-custom-all-reduce", o.disable_custom_all_reduce, "Accepted for vLLM command lines; no effect");
}

namespace {

// Open MPI binds each rank to one core when it starts two or fewer (and a hostfile's slots or a
// user's --bind-to core do the same): the CPU ops, the weight readers and rank 0's HTTP and
// tokenizer threads would then all share one core, silently.
void warn_if_bound_to_one_cpu() {
  const std::size_t usable = process_cpu_affinity().size();
  const unsigned all = std::thread::hardware_concurrency();
  if (usable == 1 && all > 1)
    LS_WARN("this rank may run on 1 of the host's " << all << " CPUs (mpirun binds a rank to one core when it "
            "starts 2 or fewer): the CPU ops, weight loading and any server or tokenizer threads share it. Start with "
            "`mpirun --bind-to none` (or --bind-to socket / numa; under Slurm, --cpus-per-task)");
}

// Runs a part of loading that may fail on some ranks only (a stage's tensor missing or
// misshapen, a file missing on one node, a GPU too small), then agrees: if any rank failed, every
// rank throws, its own error or one saying another rank failed to `what`. A rank throwing alone
// would take create_everywhere's MPI_Allreduce to the others' next collective: one of the same
// shape pairs with it silently (the KV block count read 0 and the error blamed the memory), and
// the next ones hang.
template <class Fn>
void on_every_rank_or_none(const char* what, Fn&& fn) {
  std::exception_ptr error;
  try {
    fn();
  } catch (...) {
    error = std::current_exception();
  }
  int ok = error == nullptr, all_ok = 0;
  LS_MPI_CHECK(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (error) std::rethrow_exception(error);
  if (!all_ok) throw std::runtime_error(std::string("another rank failed to ") + what);
}

}  // namespace

std::unique_ptr<ModelRuntime> ModelRuntime::create(const MpiEnvironment& env, const ModelOptions& o) {
  std::unique_ptr<ModelRuntime> rt(new ModelRuntime());
  rt->grid_ = make_rank_grid(env, o.parallel);
  if (!rt->grid_) return nullptr;
  if (o.trust_remote_code) LS_INFO("--trust-remote-code has no effect: lockstep runs no Python from checkpoints");
  if (o.disable_custom_all_reduce) LS_INFO("--disable-custom-all-reduce has no effect: collectives go through NCCL or MPI");
  // Read on every rank, before any weight, and agreed on: a bad generation config fails fast and
  // on every rank.
  GenerationDefaults generation_defaults;
  on_every_rank_or_none("read the generation config", [&] {
    generation_defaults = GenerationDefaults::load(o.generation_config, o.model, o.override_generation_config);
  });
  // --chat-template, read and parsed on every rank before any weight: a bad one fails fast.
  std::string chat_template_source;
  if (!o.chat_template.empty())
    on_every_rank_or_none("read --chat-template", [&] {
      chat_template_source = chat_template_from_option(o.chat_template);
      try {
        ChatTemplate::from_source(chat_template_source);
      } catch (const ChatTemplateError& e) {
        throw std::runtime_error("--chat-template: " + std::string(e.what()));
      }
    });
  warn_if_bound_to_one_cpu();
  // The CPU backend computes on every rank's host with MPI collectives; the CUDA backend on
  // the rank's GPU with NCCL, or with MPI through host memory (--backend mpi: ranks may share
  // a GPU, no CUDA graphs).
  const std::string& backend = o.parallel.backend;
  if (o.device == "cpu" && backend == "nccl") throw std::runtime_error("--device cpu runs its collectives over MPI, "
                                                                       "not --backend nccl");
  if (o.device == "cuda") {  // every rank needs a GPU; all ranks agree before anyone throws
    int has_gpu = rt->grid_->gpu() >= 0 ? 1 : 0, all_have_gpu = 0;
    LS_MPI_CHECK(MPI_Allreduce(&has_gpu, &all_have_gpu, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (!built_with_cuda())
      throw std::runtime_error("--device cuda: this lockstep was built without CUDA (rebuild with -DLOCKSTEP_CUDA=ON), "
                               "or use --device cpu");
    if (!all_have_gpu)
      throw std::runtime_error("--device cuda: some rank sees no GPU (rank " + std::to_string(rt->grid_->world_rank()) +
                               " sees " + std::to_string(visible_gpu_count()) +
                               "); start one rank per GPU, or use --device cpu");
  }
  const CommBackend comm = o.device == "cpu"    ? CommBackend::Mpi
                           : o.device == "cuda" ? (backend == "mpi" ? CommBackend::MpiStaged : CommBackend::Nccl)
                                                : resolve_backend(backend, *rt->grid_);
  const bool on_gpu = uses_device_buffers(comm);
  if (comm == CommBackend::MpiStaged)
    LS_INFO("--backend mpi on GPUs: collectives go through host memory (slow), "
            << rt->grid_->ranks_on_gpu() << " rank(s) on this rank's GPU");
  bool cuda_graphs = false;  // the GPU model's decision (not with staged collectives across ranks)
  rt->on_gpu_ = on_gpu;
  double step_timeout = 0;
  on_every_rank_or_none("read LOCKSTEP_STEP_TIMEOUT", [&] { step_timeout = StepWatchdog::timeout_from_env(on_gpu); });
  int capability = on_gpu ? gpu_compute_capability(rt->grid_->gpu()) : 0;  // the job's oldest GPU decides --dtype auto
  LS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &capability, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  rt->groups_ = std::make_unique<CommGroups>(*rt->grid_, comm);
  // The config and the checkpoint's index on every rank (a model directory on some nodes only, not
  // on a shared file system, fails there alone; so does an environment not passed to every rank),
  // agreed on before the next collective.
  int max_model_len = 0;
  on_every_rank_or_none("read the model's config and checkpoint", [&] {
    rt->config_ = ModelConfig::from_dir(o.model);
    rt->config_.dtype = resolve_model_dtype(o.dtype, rt->config_.torch_dtype, capability);
    const std::optional<KvCacheDtype> kv_cache_dtype = parse_kv_cache_dtype(o.kv_cache_dtype);
    if (!kv_cache_dtype) throw std::runtime_error("--kv-cache-dtype " + o.kv_cache_dtype + " is not auto, bfloat16, fp8, "
                                                  "fp8_e4m3 or fp8_e5m2");
    if (o.kv_cache_dtype == "bfloat16" && rt->config_.dtype != DType::BF16)
      throw std::runtime_error("--kv-cache-dtype bfloat16: the model runs in float16, and a 16-bit KV cache is kept in "
                               "the model's dtype; use --kv-cache-dtype auto (or fp8), or --dtype bfloat16");
    rt->config_.kv_cache_dtype = *kv_cache_dtype;
    if (rt->config_.is_deepseek_v3() && rt->config_.kv_cache_dtype != KvCacheDtype::Auto)
      throw std::runtime_error("--kv-cache-dtype " + o.kv_cache_dtype + ": deepseek_v3's latent cache is kept in the "
                               "model's dtype (fp32 on the CPU backend); use --kv-cache-dtype auto");
    if (o.load_format == "dummy") {
      const Fp8Blocks fp8 = rt->config_.fp8_weights ? Fp8Blocks{rt->config_.fp8_block_rows, rt->config_.fp8_block_cols}
                                                    : Fp8Blocks{};
      rt->weights_ = std::make_unique<DummyWeights>(o.seed, DummyWeights::kDefaultScale, fp8);
    } else if (o.load_format == "hdf5" ||
               (o.load_format == "auto" && std::filesystem::exists(o.model + "/" + kHdf5CheckpointFile))) {
      rt->weights_ = std::make_unique<Hdf5Weights>(o.model + "/" + kHdf5CheckpointFile, rt->config_.fp8_block_rows,
                                                   rt->config_.fp8_block_cols);
    } else {
      rt->checkpoint_ = std::make_unique<SafetensorsCheckpoint>(o.model);
      rt->weights_ = std::make_unique<CheckpointWeights>(*rt->checkpoint_, rt->config_.fp8_block_rows,
                                                         rt->config_.fp8_block_cols);
    }
    const ModelConfig& c = rt->config_;
    max_model_len = o.max_model_len > 0 ? o.max_model_len : c.max_position_embeddings;
    // As vLLM: past the positions the model was trained on, RoPE attention degrades or goes to NaN,
    // so a longer --max-model-len needs the user to say so.
    const char* allow_long = std::getenv("LOCKSTEP_ALLOW_LONG_MAX_MODEL_LEN");
    if (!allow_long) allow_long = std::getenv("VLLM_ALLOW_LONG_MAX_MODEL_LEN");
    if (max_model_len > c.max_position_embeddings && !(allow_long && std::string(allow_long) == "1"))
      throw std::runtime_error("--max-model-len " + std::to_string(max_model_len) + " is greater than the model's " +
                               "max_position_embeddings (" + std::to_string(c.max_position_embeddings) + " in " + o.model +
                               "/config.json); positions past it are untrained. Set LOCKSTEP_ALLOW_LONG_MAX_MODEL_LEN=1 "
                               "(or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1) to allow it");
  });
  const ModelConfig& c = rt->config_;
  const auto stages = pipeline_layer_ranges(c.num_hidden_layers, rt->grid_->layout().pp, o.pipeline_layer_partition);
  const LayerRange mine = stages[rt->grid_->pp_rank()];

  const TensorParallelSlice slice = TensorParallelSlice::make(c, rt->grid_->tp_rank(), rt->grid_->layout().tp);
  const std::uint64_t useful = static_cast<std::uint64_t>(o.max_num_seqs) * max_model_len / o.block_size + 1;
  int blocks = 0;
  std::string budget_flag;
  if (on_gpu) {
#if LOCKSTEP_WITH_CUDA
    // KV blocks: what --gpu-memory-utilization leaves after the weights and the largest step's
    // buffers (allocated now), on the rank with the least, agreed by all. Measured once every
    // stage has its weights; ranks sharing a GPU (--backend mpi) split what is left.
    std::unique_ptr<GpuStage> gpu_model;
    const int gpu = rt->grid_->gpu();
    GpuMemory before, loaded;  // free memory before and after the weights (approximate where ranks share a GPU)
    on_every_rank_or_none("load its part of the model", [&] {
      before = gpu_memory(gpu);
      gpu_model = make_gpu_stage(c, *rt->weights_, rt->groups_->tp(), rt->groups_->pp(), mine, gpu, o.block_size,
                                 !o.enforce_eager);
      loaded = gpu_memory(gpu);
      gpu_model->reserve_workspace(o.max_num_batched_tokens, o.max_num_seqs);
    });
    cuda_graphs = gpu_model->cuda_graphs();
    const GpuMemory mem = gpu_memory(gpu);
    const double allowed = o.gpu_memory_utilization * static_cast<double>(mem.total);
    const double budget = (allowed - static_cast<double>(mem.total - mem.free)) / std::max(1, rt->grid_->ranks_on_gpu()) -
                          static_cast<double>(GpuStage::kUnreservedBytes);
    blocks = budget <= 0 ? 0
                         : static_cast<int>(std::min<double>({budget / gpu_model->kv_block_bytes(),
                                                              static_cast<double>(useful), 1u << 30}));
    const auto gib = [](double bytes) { return bytes / static_cast<double>(1ull << 30); };
    // What took GPU memory before the KV cache, as vLLM reports it, so a failed or small cache says why.
    std::ostringstream used;
    used << std::fixed << std::setprecision(2) << "GPU " << gpu << " has " << gib(mem.total)
         << " GiB; --gpu-memory-utilization " << std::defaultfloat << o.gpu_memory_utilization << std::fixed
         << " allows " << gib(allowed) << " GiB, of which this rank's weights take "
         << gib(static_cast<double>(before.free) - static_cast<double>(loaded.free))
         << " GiB, the step buffers for --max-num-batched-tokens " << o.max_num_batched_tokens << " "
         << gib(static_cast<double>(loaded.free) - static_cast<double>(mem.free))
         << " GiB, what was in use before (CUDA context, other processes) " << gib(mem.total - before.free)
         << " GiB, and " << gib(GpuStage::kUnreservedBytes) << " GiB stays free for a step's own allocations";
    LS_INFO(used.str() << "; the KV cache gets " << std::fixed << std::setprecision(2) << gib(std::max(0.0, budget))
                       << " GiB");
    LS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &blocks, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (blocks < 1)
      throw std::runtime_error("no GPU memory is left for the KV cache" +
                               std::string(budget <= 0 ? ": " + used.str() + ". Raise --gpu-memory-utilization, lower "
                                                         "--max-num-batched-tokens, or add GPUs"
                                                       : " on another rank (its log says what took it)"));
    gpu_model->allocate_kv_cache(blocks);
    rt->model_ = std::move(gpu_model);
    budget_flag = "--gpu-memory-utilization";
#endif
  } else {
    // KV blocks: what --kv-cache-memory holds on the rank with the most layers, agreed by all.
    const auto kv_bytes = parse_byte_size(o.kv_cache_memory);
    if (!kv_bytes) throw std::runtime_error("--kv-cache-memory " + o.kv_cache_memory + " is not a size like 4G or 512M");
    const std::uint64_t per_block = static_cast<std::uint64_t>(o.block_size) * std::max(1, mine.size()) *
                                    cpu_kv_bytes_per_token_layer(c, slice);
    blocks = static_cast<int>(std::min<std::uint64_t>({*kv_bytes / per_block, useful, 1u << 30}));
    LS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &blocks, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (blocks < 1) throw std::runtime_error("--kv-cache-memory " + o.kv_cache_memory + " holds no KV block");
    // The CPU ops' threads: OMP_NUM_THREADS when set; else the cores this rank may run on,
    // shared with the node's other ranks unless mpirun bound the ranks apart.
    if (!std::getenv("OMP_NUM_THREADS")) {
      const int usable = std::max<int>(1, static_cast<int>(process_cpu_affinity().size()));
      const bool unbound = usable >= static_cast<int>(std::thread::hardware_concurrency());
      cpu::set_threads(unbound ? std::max(1, usable / rt->grid_->local_size()) : usable);
    }
    // Agreed as the GPU path does, though no collective follows before create_everywhere's.
    on_every_rank_or_none("load its part of the model", [&] {
      rt->model_ = make_cpu_stage(c, *rt->weights_, rt->groups_->tp(), rt->groups_->pp(), mine, blocks, o.block_size);
    });
    budget_flag = "--kv-cache-memory";
  }
  LS_CHECK(rt->model_, "no model backend for --device " << o.device);
  if (blocks * o.block_size < max_model_len / 4)
    LS_WARN("the KV cache holds only " << blocks * o.block_size << " tokens; raise " << budget_flag);
  if (!rt->leader()) {
    rt->engine_ = std::make_unique<LockstepEngine>(*rt->grid_, *rt->model_, nullptr, o.seed, step_timeout);
    return rt;
  }
  ModelContext& ctx = rt->context_;
  ctx.served_model_name = o.served_model_name.empty() ? o.model : o.served_model_name;
  ctx.max_model_len = max_model_len;
  ctx.vocab_size = c.vocab_size;
  const std::string tok_dir = o.tokenizer.empty() ? o.model : o.tokenizer;
  ctx.tokenizer = Tokenizer::from_dir(tok_dir);
  try {
    ctx.chat_template = std::make_shared<const ChatTemplate>(ChatTemplate::from_dir(tok_dir, chat_template_source));
  } catch (const ChatTemplateError& e) {
    if (!chat_template_source.empty()) throw std::runtime_error("--chat-template: " + std::string(e.what()));
    LS_WARN("chat completions are off: " << e.what());
  }
  ctx.generation_defaults = generation_defaults;
  if (!ctx.generation_defaults.empty())
    LS_INFO("default sampling parameters from the generation config: " << ctx.generation_defaults.describe()
                                                                        << " (--generation-config vllm ignores it)");
  ctx.reasoning_parser = o.reasoning_parser == "deepseek_r1" ||
                         (o.reasoning_parser == "auto" && ctx.chat_template && ctx.chat_template->opens_think_block());
  rt->blocks_ = std::make_unique<BlockManager>(blocks, o.block_size, o.enable_prefix_caching && !o.no_enable_prefix_caching);
  std::vector<int> eos = c.eos_token_ids;
  SchedulerConfig sc{o.max_num_seqs, o.max_num_batched_tokens, max_model_len, eos};
  rt->scheduler_ = std::make_unique<Scheduler>(sc, *rt->blocks_);
  rt->engine_ = std::make_unique<LockstepEngine>(*rt->grid_, *rt->model_, rt->scheduler_.get(), o.seed, step_timeout);
  LS_INFO("model " << c.architecture << " (" << (c.dtype == DType::F16 ? "float16" : "bfloat16") << ") with "
                   << c.num_hidden_layers << " layers on "
                   << (on_gpu ? std::string(cuda_graphs ? "GPUs (CUDA graphs for decode)" : "GPUs (eager)")
                               : "CPUs (" + std::to_string(cpu::threads()) + " threads per rank)")
                   << ", TP" << rt->grid_->layout().tp
                   << " x PP" << rt->grid_->layout().pp << "; KV cache " << blocks << " blocks of " << o.block_size
                   << " tokens"
                   << (c.kv_cache_dtype == KvCacheDtype::Auto ? std::string()
                       : on_gpu ? " in " + std::string(kv_cache_dtype_name(c.kv_cache_dtype))
                                : " (fp32 values rounded to " + std::string(kv_cache_dtype_name(c.kv_cache_dtype)) + ")")
                   << "; max model len " << max_model_len);
  if (step_timeout > 0) LS_INFO("a step that takes longer than " << step_timeout << " s ends the job (LOCKSTEP_STEP_TIMEOUT)");
  return rt;
}

std::unique_ptr<ModelRuntime> ModelRuntime::create_everywhere(const MpiEnvironment& env, const ModelOptions& o,
                                                             const char* command) {
  std::unique_ptr<ModelRuntime> rt;
  std::string error;
  try {
    rt = create(env, o);
  } catch (const std::exception& e) {
    error = e.what();
  }
  int loaded = rt != nullptr, all_loaded = 0;
  LS_MPI_CHECK(MPI_Allreduce(&loaded, &all_loaded, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (all_loaded) return rt;
  // Rank 0 prints its error; another rank only one that differs (a file missing on its node),
  // not the same line once a rank.
  std::vector<std::uint8_t> first(error.begin(), error.end());
  broadcast_bytes(first, 0, MPI_COMM_WORLD);
  if (env.world_rank() == 0 && !error.empty())
    std::fprintf(stderr, "lockstep %s: error: %s\n", command, error.c_str());
  else if (!error.empty() && error != std::string(first.begin(), first.end()))
    std::fprintf(stderr, "lockstep %s: error on rank %d: %s\n", command, env.world_rank(), error.c_str());
  // Nobody leaves before every message is out: mpirun (and srun --kill-on-bad-exit) ends the
  // other ranks at the first non-zero exit, rank 0 perhaps before it printed.
  std::fflush(stderr);
  LS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  return nullptr;
}

ModelRuntime::~ModelRuntime() = default;

}  // namespace lockstep
