// `lockstep gridcheck`: prints where every rank landed (host, local rank, GPU, PCI bus id,
// TP/PP position) and proves the world, TP and PP groups and the pipeline links carry data
// correctly over the chosen backend. The first thing to run on a new allocation.
#pragma once

#include <CLI/CLI.hpp>

#include "app/parallel_options.h"

namespace lockstep {

class MpiEnvironment;

struct GridcheckOptions {
  // Without sizes the whole world is one TP group, so `srun lockstep gridcheck` needs no
  // arithmetic from the job script.
  ParallelOptions parallel{.tensor_parallel_size = 0};
};

CLI::App* add_gridcheck_command(CLI::App& app, GridcheckOptions& opts);
int run_gridcheck(const MpiEnvironment& env, const GridcheckOptions& opts);

}  // namespace lockstep
