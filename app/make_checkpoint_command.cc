// `lockstep make-checkpoint` (see make_checkpoint_command.h).
#include "app/make_checkpoint_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "app/commbench/byte_size.h"
#include "model/checkpoint_writer.h"
#include "model/tokenizer/tokenizer.h"

namespace lockstep {
namespace fs = std::filesystem;

CLI::App* add_make_checkpoint_command(CLI::App& app, MakeCheckpointOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "make-checkpoint", "Write a random-weight checkpoint (hub layout, bf16 safetensors) for a config.json");
  cmd->add_option("--config", o.config, "config.json of a qwen2, qwen3, llama or deepseek_v3 model")->required()->check(CLI::ExistingFile);
  cmd->add_option("--tokenizer", o.tokenizer_dir, "Directory with tokenizer.json and tokenizer_config.json to copy")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--output", o.output, "Checkpoint directory to write")->required();
  cmd->add_option("--seed", o.seed, "Weights equal --load-format dummy --seed SEED");
  cmd->add_option("--max-shard-size", o.max_shard_size, "Largest safetensors shard, e.g. 2G or 100K");
  cmd->add_flag("--force", o.force, "Overwrite a non-empty --output");
  return cmd;
}

int run_make_checkpoint(const MakeCheckpointOptions& o) {
  auto error = [](const std::string& what) {
    std::fprintf(stderr, "lockstep make-checkpoint: error: %s\n", what.c_str());
    return 2;
  };
  try {
    const ModelConfig config = ModelConfig::from_file(o.config);
    const auto shard = parse_byte_size(o.max_shard_size);
    if (!shard || *shard == 0) return error("--max-shard-size " + o.max_shard_size + " is not a size like 2G");
    if (!fs::exists(fs::path(o.tokenizer_dir) / "tokenizer.json"))
      return error(o.tokenizer_dir + " has no tokenizer.json");
    const auto tokenizer = Tokenizer::from_dir(o.tokenizer_dir);
    if (tokenizer->vocab_size() > config.vocab_size)
      return error("the tokenizer has " + std::to_string(tokenizer->vocab_size()) + " tokens but the config's vocab_size is " +
                   std::to_string(config.vocab_size) + "; ids past the embedding would crash a real model");
    if (fs::exists(o.output) && !fs::is_empty(o.output) && !o.force)
      return error(o.output + " is not empty; pass --force to overwrite it");
    fs::create_directories(o.output);
    // --force: shards of an earlier checkpoint would be left beside the new index; remove them
    // (only weight files, never anything else the directory holds).
    for (const auto& entry : fs::directory_iterator(o.output)) {
      const std::string name = entry.path().filename().string();
      if (entry.path().extension() == ".safetensors" || name == "model.safetensors.index.json") fs::remove(entry.path());
    }
    fs::copy_file(o.config, fs::path(o.output) / "config.json", fs::copy_options::overwrite_existing);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                          "generation_config.json"})
      if (fs::exists(fs::path(o.tokenizer_dir) / f))
        fs::copy_file(fs::path(o.tokenizer_dir) / f, fs::path(o.output) / f, fs::copy_options::overwrite_existing);

    CheckpointWriteOptions w;
    w.seed = o.seed;
    w.max_shard_bytes = *shard;
    const auto start = std::chrono::steady_clock::now();
    auto last = start;
    w.progress = [&](std::uint64_t done, std::uint64_t total) {
      const auto now = std::chrono::steady_clock::now();
      if (done < total && now - last < std::chrono::milliseconds(500)) return;
      last = now;
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "\r[make-checkpoint] %.1f / %.1f MB (%.0f%%), %.2f GB/s", done / 1e6, total / 1e6,
                   total ? 100.0 * done / total : 100.0, sec > 0 ? done / sec / 1e9 : 0.0);
    };
    write_dummy_checkpoint(config, o.output, w);
    std::fprintf(stderr, "\n[make-checkpoint] %s: %s, %d layers, vocab %d, random weights (seed %llu)\n",
                 o.output.c_str(), config.architecture.c_str(), config.num_hidden_layers, config.vocab_size,
                 static_cast<unsigned long long>(o.seed));
    return 0;
  } catch (const std::exception& e) {
    return error(e.what());
  }
}

}  // namespace lockstep
