// Flags every multi-rank subcommand shares (named as in vLLM), and the start-up that turns
// them into a rank grid: a world size that does not match TP x PP is one clear line from
// rank 0 and a non-zero exit of every rank.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "comm/rank_grid.h"

namespace lockstep {

class MpiEnvironment;

struct ParallelOptions {
  int tensor_parallel_size = 1;  // 0: every rank of a stage, world / pipeline_parallel_size
  int pipeline_parallel_size = 1;
  std::string backend = "auto";  // auto | nccl | mpi
};

void add_parallel_options(CLI::App& cmd, ParallelOptions& opts);

// nullptr (after rank 0 printed why) when the world does not fit the layout.
std::unique_ptr<RankGrid> make_rank_grid(const MpiEnvironment& env, const ParallelOptions& opts);

// vLLM's runbooks spell "-tp 8 -pp 2"; CLI11 short flags are one letter, so map them first.
std::vector<std::string> normalize_vllm_aliases(int argc, char** argv);

}  // namespace lockstep
