// The lockstep binary: one program, one rank per GPU under mpirun/srun, subcommands for each
// job (serve, batch, tokenize, make-checkpoint, gridcheck, commbench).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "app/batch/batch_command.h"
#include "app/commbench/commbench_command.h"
#include "app/convert_command.h"
#include "app/gridcheck_command.h"
#include "app/make_checkpoint_command.h"
#include "app/parallel_options.h"
#include "app/serve/serve_command.h"
#include "app/tokenize_command.h"
#include "comm/mpi_env.h"

#ifndef LOCKSTEP_VERSION
#define LOCKSTEP_VERSION "dev"
#endif

int main(int argc, char** argv) {
  lockstep::MpiEnvironment env(argc, argv);

  CLI::App app{"lockstep: serve the DeepSeek-R1 family across GPUs and nodes as one MPI job"};
  app.set_version_flag("--version", LOCKSTEP_VERSION);
  app.require_subcommand(1);
  lockstep::GridcheckOptions gridcheck;
  CLI::App* gridcheck_cmd = lockstep::add_gridcheck_command(app, gridcheck);
  lockstep::CommbenchOptions commbench;
  CLI::App* commbench_cmd = lockstep::add_commbench_command(app, commbench);
  lockstep::BatchOptions batch;
  CLI::App* batch_cmd = lockstep::add_batch_command(app, batch);
  lockstep::ServeOptions serve;
  CLI::App* serve_cmd = lockstep::add_serve_command(app, serve);
  lockstep::MakeCheckpointOptions make_checkpoint;
  CLI::App* make_checkpoint_cmd = lockstep::add_make_checkpoint_command(app, make_checkpoint);
  lockstep::ConvertOptions convert;
  CLI::App* convert_cmd = lockstep::add_convert_command(app, convert);
  lockstep::TokenizeOptions tokenize;
  CLI::App* tokenize_cmd = lockstep::add_tokenize_command(app, tokenize);

  std::vector<std::string> args = lockstep::normalize_vllm_aliases(argc, argv);
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    // Every rank parses the same command line; only rank 0 speaks.
    if (env.world_rank() != 0) return e.get_exit_code();
    return app.exit(e);
  }

  if (gridcheck_cmd->parsed()) return lockstep::run_gridcheck(env, gridcheck);
  if (commbench_cmd->parsed()) return lockstep::run_commbench(env, commbench);
  if (tokenize_cmd->parsed()) return lockstep::run_tokenize(tokenize);
  if (make_checkpoint_cmd->parsed()) return lockstep::run_make_checkpoint(make_checkpoint);
  if (convert_cmd->parsed()) return lockstep::run_convert(convert);
  if (batch_cmd->parsed()) return lockstep::run_batch(env, batch);
  if (serve_cmd->parsed()) return lockstep::run_serve(env, serve);
  return 2;
}
