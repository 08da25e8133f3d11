// ParallelOptions (see parallel_options.h).
#include "app/parallel_options.h"

#include <algorithm>
#include <cstdio>

#include "comm/mpi_env.h"

namespace lockstep {

void add_parallel_options(CLI::App& cmd, ParallelOptions& o) {
  cmd.add_option("--tensor-parallel-size", o.tensor_parallel_size,
                 "Tensor-parallel ranks per pipeline stage (alias -tp)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--pipeline-parallel-size", o.pipeline_parallel_size,
                 "Pipeline stages (alias -pp); world size must equal TP x PP")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--backend", o.backend, "Collectives backend: nccl (GPUs), mpi (host memory; with --device cuda "
                                         "through host copies, so ranks may share a GPU), or auto (nccl when every "
                                         "rank has a GPU)")
      ->check(CLI::IsMember({"auto", "nccl", "mpi"}));
}

std::unique_ptr<RankGrid> make_rank_grid(const MpiEnvironment& env, const ParallelOptions& o) {
  const int tp = o.tensor_parallel_size > 0 ? o.tensor_parallel_size
                                            : std::max(1, env.world_size() / o.pipeline_parallel_size);
  const GridLayout layout{tp, o.pipeline_parallel_size};
  if (const auto problem = check_world_size(layout, env.world_size())) {
    if (env.world_rank() == 0) {
      std::fprintf(stderr, "lockstep: error: %s\n", problem->c_str());
      std::fflush(stderr);
    }
    // Nobody leaves before rank 0 has spoken: mpirun kills the job at the first non-zero exit.
    MPI_Barrier(MPI_COMM_WORLD);
    return nullptr;
  }
  return std::make_unique<RankGrid>(env, layout);
}

std::vector<std::string> normalize_vllm_aliases(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-tp") a = "--tensor-parallel-size";
    else if (a == "-pp") a = "--pipeline-parallel-size";
    else if (a.rfind("-tp=", 0) == 0) a = "--tensor-parallel-size=" + a.substr(4);
    else if (a.rfind("-pp=", 0) == 0) a = "--pipeline-parallel-size=" + a.substr(4);
    args.push_back(std::move(a));
  }
  return args;
}

}  // namespace lockstep
