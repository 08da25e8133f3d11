// `lockstep make-checkpoint --config config.json --tokenizer DIR --output DIR`: a checkpoint in
// the hub layout with random weights (--load-format dummy's values for --seed) for any
// supported config, with the tokenizer files of DIR. The README's demo model is made this way;
// so are test and benchmark checkpoints at real shapes without downloading anything.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace lockstep {

struct MakeCheckpointOptions {
  std::string config;
  std::string tokenizer_dir;
  std::string output;
  std::uint64_t seed = 0;
  std::string max_shard_size = "2G";
  bool force = false;
};

CLI::App* add_make_checkpoint_command(CLI::App& app, MakeCheckpointOptions& opts);
int run_make_checkpoint(const MakeCheckpointOptions& opts);

}  // namespace lockstep
