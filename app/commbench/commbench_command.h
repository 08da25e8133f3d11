// `lockstep commbench`: nccl-tests inside lockstep. The same flags and table (size, count,
// type, redop, root, then out-of-place and in-place time/algbw/busbw/#wrong), the same
// bus-bandwidth factors, a per-op "Out of bounds values" / "Avg bus bandwidth" footer,
// --json for machines, and a latency mode (p50/p99 per call) for the sizes decode uses.
// Exit status is non-zero when any value is wrong.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace lockstep {

class MpiEnvironment;

struct CommbenchOptions {
  std::string min_bytes = "32M";   // -b
  std::string max_bytes = "32M";   // -e
  std::uint64_t step_factor = 1;   // -f (> 1: multiply)
  std::string step_bytes = "1M";   // -i (used when -f is 1)
  int iters = 20;                  // -n
  int warmup_iters = 1;            // -w
  int check = 1;                   // -c
  std::string dtype = "float";     // -d (or "all")
  std::string redop = "sum";       // -o (or "all")
  int root = 0;                    // -r
  std::string ops = "all_reduce";  // --ops a,b,...
  std::string backend = "auto";    // --backend
  std::string json_path;           // --json
  bool latency = false;            // --latency
  bool diagnose = false;           // --diagnose
  int corrupt_rank = -1;           // --debug-corrupt-rank (tests the checker)
};

CLI::App* add_commbench_command(CLI::App& app, CommbenchOptions& opts);
int run_commbench(const MpiEnvironment& env, const CommbenchOptions& opts);

}  // namespace lockstep
