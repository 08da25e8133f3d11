// `lockstep batch --input F --output F`: offline inference under mpirun. Input lines are
// OpenAI Batch requests ({custom_id, method, url: /v1/completions or /v1/chat/completions,
// body}) or plain {"prompt": ...} lines; every request is scheduled together for throughput;
// each result is appended to the output (OpenAI Batch output format) the moment it finishes,
// so an interrupted job loses nothing and --resume skips the custom_ids already written. A
// malformed line gets an error line, not a crash. Progress (done/total, tok/s, ETA) goes to
// stderr, and a summary line at the end.
#pragma once

#include <CLI/CLI.hpp>

#include "app/model_runtime.h"

namespace lockstep {

struct BatchOptions {
  ModelOptions model;
  std::string input, output;
  bool resume = false;
};

CLI::App* add_batch_command(CLI::App& app, BatchOptions& opts);
int run_batch(const MpiEnvironment& env, const BatchOptions& opts);

}  // namespace lockstep
