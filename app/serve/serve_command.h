// `lockstep serve`: the OpenAI-compatible server. Every rank loads its slice of the model and
// runs the lock-step engine; rank 0 also hosts HTTP (--host, --port) and schedules. SIGINT or
// SIGTERM (to rank 0, or to every rank as Slurm's scancel sends it) stops accepting requests,
// lets running ones finish within --shutdown-timeout (the rest are aborted), tells every rank
// to leave, and all exit 0.
#pragma once

#include <CLI/CLI.hpp>

#include "app/model_runtime.h"

namespace lockstep {

struct ServeOptions {
  ModelOptions model;
  std::string host = "0.0.0.0";
  int port = 8000;
  std::string api_key;          // also from VLLM_API_KEY / LOCKSTEP_API_KEY
  double shutdown_timeout = 30;  // seconds running requests may take to finish after a signal
  std::size_t max_waiting_requests = 4096;
  int http_threads = 4096;      // most connections served at once (threads start as needed)
};

CLI::App* add_serve_command(CLI::App& app, ServeOptions& opts);
int run_serve(const MpiEnvironment& env, const ServeOptions& opts);

}  // namespace lockstep
