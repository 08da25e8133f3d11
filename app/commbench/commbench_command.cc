// `lockstep commbench` (see commbench_command.h). Timing follows nccl-tests: after warm-up and
// a barrier, n calls are issued back to back, the wall time until the last completes is
// divided by n, and that figure is averaged over the ranks.
#include "app/commbench/commbench_command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "app/commbench/byte_size.h"
#include "app/commbench/collective_spec.h"
#include "app/commbench/diagnose.h"
#include "comm/comm_groups.h"
#include "comm/mpi_check.h"
#include "comm/mpi_env.h"
#include "comm/rank_grid.h"

#if LOCKSTEP_WITH_CUDA
#include <nccl.h>
#endif

namespace lockstep {
namespace {

using Clock = std::chrono::steady_clock;

struct Plan {
  std::vector<std::uint64_t> sizes;
  std::vector<CollectiveSpec> collectives;
  std::vector<DType> types;
  std::vector<ReduceOp> redops;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Every rank validates the same flags; rank 0 prints the problem. nullopt = bad flags.
std::optional<Plan> make_plan(const CommbenchOptions& o, std::string& error) {
  Plan p;
  const auto min_b = parse_byte_size(o.min_bytes), max_b = parse_byte_size(o.max_bytes),
             step = parse_byte_size(o.step_bytes);
  if (!min_b || !max_b || !step) {
    error = "sizes must look like 8, 512K, 64M or 4G (got -b " + o.min_bytes + " -e " + o.max_bytes + " -i " +
            o.step_bytes + ")";
    return std::nullopt;
  }
  if (*min_b > *max_b) {
    error = "-b " + o.min_bytes + " is larger than -e " + o.max_bytes;
    return std::nullopt;
  }
  if (o.step_factor <= 1 && *step == 0 && *min_b != *max_b) {
    error = "-i 0 with -f 1 would never reach -e";
    return std::nullopt;
  }
  p.sizes = size_sweep(*min_b, *max_b, o.step_factor, *step);
  for (const std::string& name : split_commas(o.ops == "all" ? "all_reduce,all_gather,reduce_scatter,broadcast,sendrecv,alltoall" : o.ops)) {
    const auto spec = find_collective_spec(name);
    if (!spec) {
      error = "unknown collective '" + name + "' in --ops (all_reduce, all_gather, reduce_scatter, broadcast, "
              "sendrecv, alltoall, or all)";
      return std::nullopt;
    }
    p.collectives.push_back(*spec);
  }
  if (p.collectives.empty()) {
    error = "--ops names no collective";
    return std::nullopt;
  }
  if (o.dtype == "all") {
    p.types.assign(std::begin(kAllDTypes), std::end(kAllDTypes));
  } else if (const auto t = parse_dtype(o.dtype)) {
    p.types.push_back(*t);
  } else {
    error = "unknown -d " + o.dtype + " (float, half, bfloat16, int32, or all)";
    return std::nullopt;
  }
  if (o.redop == "all") {
    p.redops = {ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min, ReduceOp::Avg};
  } else if (const auto op = parse_reduce_op(o.redop)) {
    p.redops.push_back(*op);
  } else {
    error = "unknown -o " + o.redop + " (sum, prod, max, min, avg, or all)";
    return std::nullopt;
  }
  if (o.iters < 1 || o.warmup_iters < 0) {
    error = "-n must be >= 1 and -w >= 0";
    return std::nullopt;
  }
  return p;
}

// nccl-tests' number formatting: the widest of %.2f/%.1f/%.0f that fits, else %e.
std::string fit(double v, int width) {
  char buf[64];
  for (const char* fmt : {"%*.2f", "%*.1f", "%*.0f"})
    if (std::snprintf(buf, sizeof buf, fmt, width, v) <= width) return buf;
  std::snprintf(buf, sizeof buf, width >= 7 ? "%*.1e" : "%*.0e", width, v);
  return buf;
}

void print_devices(const RankGrid& grid, CommBackend backend) {
  struct Info { std::int32_t rank, pid, gpu; char host[64]; char pci[32]; char name[64]; };
  Info mine{grid.world_rank(), static_cast<std::int32_t>(getpid()), grid.gpu(), {}, {}, {}};
  std::snprintf(mine.host, sizeof mine.host, "%s", grid.host().c_str());
  std::snprintf(mine.pci, sizeof mine.pci, "%s", gpu_pci_bus_id(grid.gpu()).c_str());
  std::snprintf(mine.name, sizeof mine.name, "%s", backend == CommBackend::Nccl ? gpu_name(grid.gpu()).c_str() : "host memory (MPI)");
  std::vector<Info> all(grid.world_rank() == 0 ? grid.world_size() : 0);
  LS_MPI_CHECK(MPI_Gather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, 0, MPI_COMM_WORLD));
  if (grid.world_rank() != 0) return;
  std::printf("# Using devices\n");
  for (const Info& i : all)
    std::printf("#  Rank %2d Group  0 Pid %6d on %10s device %2d [%s] %s\n", i.rank, i.pid, i.host, i.gpu,
                i.pci[0] ? i.pci : "-", i.name);
}

void print_table_header() {
  std::printf("#\n");
  std::printf("# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place          \n", "", "", "", "", "");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n", "size", "count", "type",
              "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n", "(B)", "(elements)", "", "", "",
              "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
}

class Bench {
 public:
  Bench(const CommbenchOptions& o, CommGroups& groups, const RankGrid& grid)
      : o_(o), groups_(groups), coll_(groups.world()), grid_(grid) {}

  // Runs one collective over every type/op/size; returns its wrong-value total.
  long long run(const CollectiveSpec& spec, const Plan& plan, nlohmann::json& report) {
    const int n = coll_.size();
    std::uint64_t max_bytes = 0;
    for (DType t : plan.types) {
      const CollectiveCounts c = collective_counts(spec.kind, plan.sizes.back(), t, n);
      max_bytes = std::max<std::uint64_t>(max_bytes, std::max(c.send, c.recv) * c.element_size);
    }
    DeviceBuffer send = groups_.allocate(max_bytes), recv = groups_.allocate(max_bytes);
    long long wrong_total = 0;
    double busbw_sum = 0;
    int busbw_lines = 0;
    nlohmann::json rows = nlohmann::json::array();
    const bool rank0 = grid_.world_rank() == 0;
    if (rank0) print_table_header();
    for (DType t : plan.types) {
      const std::vector<ReduceOp> ops = spec.has_redop ? plan.redops : std::vector<ReduceOp>{ReduceOp::Sum};
      for (ReduceOp op : ops) {
        const int root = spec.has_root ? o_.root : -1;
        for (std::uint64_t bytes : plan.sizes) {
          const CollectiveCounts c = collective_counts(spec.kind, bytes, t, n);
          nlohmann::json row = {{"size", c.bytes()}, {"count", c.param}, {"type", dtype_name(t)},
                                {"redop", spec.has_redop ? reduce_op_name(op) : "none"}, {"root", root}};
          if (rank0)
            std::printf("%12llu  %12zu  %8s  %6s  %6d", static_cast<unsigned long long>(c.bytes()), c.param,
                        std::string(dtype_name(t)).c_str(),
                        spec.has_redop ? std::string(reduce_op_name(op)).c_str() : "none", root);
          for (bool in_place : {false, true}) {
            const char* key = in_place ? "in_place" : "out_of_place";
            if (in_place && !spec.supports_in_place) {
              if (rank0) std::printf("  %7s  %6s  %6s  %6s", "N/A", "N/A", "N/A", "N/A");
              row[key] = nullptr;
              continue;
            }
            const double sec = time_calls(spec, send, recv, c, t, op, root, in_place);
            const Bandwidth bw = collective_bandwidth(spec.kind, c, sec, n);
            const bool checked = o_.check && (!in_place || spec.in_place_checked);
            const long long wrong = checked ? check(spec, send, recv, c, t, op, root, in_place) : 0;
            wrong_total += wrong;
            busbw_sum += bw.bus;
            ++busbw_lines;
            if (rank0) {
              std::printf("  %7s  %6s  %6s  ", fit(sec * 1e6, 7).c_str(), fit(bw.alg, 6).c_str(), fit(bw.bus, 6).c_str());
              if (checked) std::printf("%6lld", wrong); else std::printf("%6s", "N/A");
            }
            row[key] = {{"time", sec * 1e6}, {"alg_bw", bw.alg}, {"bus_bw", bw.bus},
                        {"nwrong", checked ? nlohmann::json(wrong) : nlohmann::json(nullptr)}};
          }
          if (rank0) {
            std::printf("\n");
            std::fflush(stdout);
          }
          rows.push_back(row);
        }
      }
    }
    const double avg_busbw = busbw_lines ? busbw_sum / busbw_lines : 0.0;
    if (rank0) {
      std::printf("# %-20s : %lld %s\n", "Out of bounds values", wrong_total, wrong_total ? "FAILED" : "OK");
      std::printf("# %-20s : %g \n", "Avg bus bandwidth", avg_busbw);
      std::printf("#\n");
      std::fflush(stdout);
    }
    report = {{"name", spec.name}, {"results", rows},
              {"out_of_bounds", {{"count", wrong_total}, {"okay", wrong_total == 0}}},
              {"average_bus_bandwidth", {{"bandwidth", avg_busbw}}}};
    return wrong_total;
  }

  // Latency mode: every call timed on its own (barrier, call, wait); per call the slowest
  // rank counts; p50/p99 over the -n calls.
  void latency(const CollectiveSpec& spec, const Plan& plan, nlohmann::json& report) {
    const int n = coll_.size();
    const DType t = plan.types.front();
    const ReduceOp op = plan.redops.front();
    const int root = spec.has_root ? o_.root : -1;
    const CollectiveCounts biggest = collective_counts(spec.kind, plan.sizes.back(), t, n);
    const std::uint64_t buf_bytes = std::max(biggest.send, biggest.recv) * biggest.element_size;
    DeviceBuffer send = groups_.allocate(buf_bytes), recv = groups_.allocate(buf_bytes);
    const bool rank0 = grid_.world_rank() == 0;
    if (rank0) {
      std::printf("#\n# latency: each call timed alone (barrier, call, wait), slowest rank per call, %d calls\n", o_.iters);
      std::printf("# %10s  %12s  %8s  %6s  %6s  %8s  %8s  %8s  %8s  %8s\n", "size", "count", "type", "redop", "root",
                  "p50(us)", "p99(us)", "mean(us)", "min(us)", "max(us)");
    }
    nlohmann::json rows = nlohmann::json::array();
    for (std::uint64_t bytes : plan.sizes) {
      const CollectiveCounts c = collective_counts(spec.kind, bytes, t, n);
      for (int w = 0; w < std::max(1, o_.warmup_iters); ++w) run_collective(coll_, spec.kind, send, recv, c, t, op, root, false);
      coll_.synchronize();
      std::vector<double> us(o_.iters);
      for (int i = 0; i < o_.iters; ++i) {
        LS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
        const auto t0 = Clock::now();
        run_collective(coll_, spec.kind, send, recv, c, t, op, root, false);
        coll_.synchronize();
        us[i] = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      }
      LS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, us.data(), o_.iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
      std::vector<double> sorted = us;
      std::sort(sorted.begin(), sorted.end());
      auto pct = [&](double p) { return sorted[std::min<std::size_t>(sorted.size() - 1, static_cast<std::size_t>(p * (sorted.size() - 1) + 0.5))]; };
      double mean = 0;
      for (double v : us) mean += v / us.size();
      if (rank0) {
        std::printf("%12llu  %12zu  %8s  %6s  %6d  %8s  %8s  %8s  %8s  %8s\n", static_cast<unsigned long long>(c.bytes()),
                    c.param, std::string(dtype_name(t)).c_str(), spec.has_redop ? std::string(reduce_op_name(op)).c_str() : "none",
                    root, fit(pct(0.5), 8).c_str(), fit(pct(0.99), 8).c_str(), fit(mean, 8).c_str(),
                    fit(sorted.front(), 8).c_str(), fit(sorted.back(), 8).c_str());
        std::fflush(stdout);
      }
      rows.push_back({{"size", c.bytes()}, {"count", c.param}, {"type", dtype_name(t)}, {"p50_us", pct(0.5)},
                      {"p99_us", pct(0.99)}, {"mean_us", mean}, {"min_us", sorted.front()}, {"max_us", sorted.back()}});
    }
    report = {{"name", spec.name}, {"latency", rows}};
  }

 private:
  double time_calls(const CollectiveSpec& spec, DeviceBuffer& send, DeviceBuffer& recv, const CollectiveCounts& c,
                    DType t, ReduceOp op, int root, bool in_place) {
    for (int w = 0; w < o_.warmup_iters; ++w) run_collective(coll_, spec.kind, send, recv, c, t, op, root, in_place);
    run_collective(coll_, spec.kind, send, recv, c, t, op, root, in_place);  // nccl-tests' "sync" call
    coll_.synchronize();
    // Like nccl-tests, rotate small messages through the allocation from call to call.
    const std::size_t footprint = c.bytes();
    const std::size_t slots = footprint ? std::max<std::size_t>(1, recv.bytes() / footprint) : 1;
    LS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    const auto t0 = Clock::now();
    for (int i = 0; i < o_.iters; ++i)
      run_collective(coll_, spec.kind, send, recv, c, t, op, root, in_place, footprint * (i % slots));
    coll_.synchronize();
    double sec = std::chrono::duration<double>(Clock::now() - t0).count() / o_.iters;
    LS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &sec, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    return sec / grid_.world_size();
  }

  long long check(const CollectiveSpec& spec, DeviceBuffer& send, DeviceBuffer& recv, const CollectiveCounts& c,
                  DType t, ReduceOp op, int root, bool in_place) {
    ++rep_;
    fill_collective_inputs(coll_, spec.kind, send, recv, c, t, root, in_place, rep_, coll_.stream());
    run_collective(coll_, spec.kind, send, recv, c, t, op, root, in_place);
    coll_.synchronize();
    if (grid_.world_rank() == o_.corrupt_rank && c.recv > 0) corrupt_first_result(recv, c, t, in_place);
    long long wrong = static_cast<long long>(
        check_collective_result(coll_, spec.kind, recv, c, t, op, root, in_place, rep_, coll_.stream()));
    LS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &wrong, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD));
    return wrong;
  }

  // --debug-corrupt-rank: overwrite one result element with a value no pattern produces.
  void corrupt_first_result(DeviceBuffer& recv, const CollectiveCounts& c, DType t, bool in_place) {
    alignas(4) unsigned char bad[4];
    store_from_float(bad, 0, t, 1000.0f);
    const std::size_t offset = in_place ? c.recv_in_place_offset * coll_.rank() * c.element_size : 0;
    recv.copy_from_host(bad, c.element_size, offset);
  }

  const CommbenchOptions& o_;
  CommGroups& groups_;
  Collectives& coll_;
  const RankGrid& grid_;
  std::uint32_t rep_ = 0;
};

}  // namespace

CLI::App* add_commbench_command(CLI::App& app, CommbenchOptions& o) {
  CLI::App* cmd = app.add_subcommand("commbench", "nccl-tests-style bandwidth and latency of the collectives");
  cmd->add_option("-b,--minbytes", o.min_bytes, "Smallest message, e.g. 8, 1K, 64M (default 32M)");
  cmd->add_option("-e,--maxbytes", o.max_bytes, "Largest message (default 32M)");
  cmd->add_option("-f,--stepfactor", o.step_factor, "Multiply the size by this between lines (default 1: add -i)");
  cmd->add_option("-i,--stepbytes", o.step_bytes, "Add this between lines when -f is 1 (default 1M)");
  cmd->add_option("-n,--iters", o.iters, "Timed calls per line (default 20)");
  cmd->add_option("-w,--warmup_iters", o.warmup_iters, "Untimed calls before each line (default 1)");
  cmd->add_option("-c,--check", o.check, "Verify results: 1 (default) or 0");
  cmd->add_option("-d,--datatype", o.dtype, "float, half, bfloat16, int32, or all (default float)");
  cmd->add_option("-o,--op", o.redop, "sum, prod, max, min, avg, or all (default sum)");
  cmd->add_option("-r,--root", o.root, "Root rank of broadcast (default 0)");
  cmd->add_option("--ops", o.ops, "Comma-separated: all_reduce, all_gather, reduce_scatter, broadcast, sendrecv, "
                                  "alltoall, or all (default all_reduce)");
  cmd->add_option("--backend", o.backend, "nccl (GPUs), mpi (host memory) or auto (default)")
      ->check(CLI::IsMember({"auto", "nccl", "mpi"}));
  cmd->add_option("--json", o.json_path, "Also write the results as JSON to this file");
  cmd->add_flag("--latency", o.latency, "Time each call alone and report p50/p99 (use with -b 1K -e 1M)");
  cmd->add_flag("--diagnose", o.diagnose, "Rank/GPU/NUMA map, GPU peer matrix, the transport NCCL chose per "
                                          "rank pair, the MPI transport, and advice");
  cmd->add_option("--debug-corrupt-rank", o.corrupt_rank, "Corrupt one result on this rank (checks the checker)")
      ->group("");
  return cmd;
}

int run_commbench(const MpiEnvironment& env, const CommbenchOptions& o) {
  if (o.diagnose) return run_diagnose(env, o.backend);
  std::string error;
  const auto plan = make_plan(o, error);
  if (!plan) {
    if (env.world_rank() == 0) std::fprintf(stderr, "lockstep commbench: error: %s\n", error.c_str());
    LS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    return 2;
  }
  RankGrid grid(env, GridLayout{env.world_size(), 1});
  const CommBackend backend = resolve_backend(o.backend, grid);
  if (o.root < 0 || o.root >= grid.world_size()) {
    if (env.world_rank() == 0) std::fprintf(stderr, "lockstep commbench: error: -r %d outside 0..%d\n", o.root, grid.world_size() - 1);
    LS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    return 2;
  }
  CommGroups groups(grid, backend);
  const bool rank0 = env.world_rank() == 0;
  if (rank0) {
    std::printf("# lockstep commbench %s: backend %s", "(nccl-tests table format)", std::string(backend_name(backend)).c_str());
#if LOCKSTEP_WITH_CUDA
    if (backend == CommBackend::Nccl) {
      int v = 0;
      ncclGetVersion(&v);
      std::printf(", NCCL %d", v);
    }
#endif
    std::printf("\n# nRanks %d minBytes %llu maxBytes %llu step: %llu(%s) warmup iters: %d iters: %d validation: %d\n",
                grid.world_size(), static_cast<unsigned long long>(plan->sizes.front()),
                static_cast<unsigned long long>(plan->sizes.back()),
                static_cast<unsigned long long>(o.step_factor > 1 ? o.step_factor : *parse_byte_size(o.step_bytes)),
                o.step_factor > 1 ? "factor" : "bytes", o.warmup_iters, o.iters, o.check);
    std::printf("#\n");
  }
  print_devices(grid, backend);

  Bench bench(o, groups, grid);
  long long wrong = 0;
  nlohmann::json collectives = nlohmann::json::array();
  for (const CollectiveSpec& spec : plan->collectives) {
    if (rank0) {
      std::printf("#\n# Collective test starting: %s\n", std::string(spec.name).c_str());
      std::fflush(stdout);
    }
    nlohmann::json report;
    if (o.latency) bench.latency(spec, *plan, report);
    else wrong += bench.run(spec, *plan, report);
    collectives.push_back(report);
  }
  if (rank0 && !o.json_path.empty()) {
    nlohmann::json doc = {{"tool", "lockstep commbench"}, {"backend", backend_name(backend)},
                          {"nranks", grid.world_size()}, {"iters", o.iters}, {"warmup_iters", o.warmup_iters},
                          {"check", o.check}, {"collectives", collectives}};
    std::ofstream out(o.json_path);
    out << doc.dump(2) << "\n";
    out.close();
    if (!out) {
      std::fprintf(stderr, "lockstep commbench: error: could not write %s\n", o.json_path.c_str());
      return 1;
    }
  }
  return wrong == 0 ? 0 : 1;
}

}  // namespace lockstep
