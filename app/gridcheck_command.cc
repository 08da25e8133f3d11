// `lockstep gridcheck` (see gridcheck_command.h).
#include "app/gridcheck_command.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "comm/comm_groups.h"
#include "comm/mpi_check.h"
#include "comm/mpi_env.h"
#include "kernels/log.h"

namespace lockstep {
namespace {

struct Placement {
  std::int32_t world_rank, tp_rank, pp_rank, local_rank, local_size, gpu;
  char host[64];
  char pci[32];
};

Placement my_placement(const RankGrid& g) {
  Placement p{g.world_rank(), g.tp_rank(), g.pp_rank(), g.local_rank(), g.local_size(), g.gpu(), {}, {}};
  std::snprintf(p.host, sizeof p.host, "%s", g.host().c_str());
  std::snprintf(p.pci, sizeof p.pci, "%s", gpu_pci_bus_id(g.gpu()).c_str());
  return p;
}

void print_placements(const RankGrid& grid, CommBackend backend) {
  const Placement mine = my_placement(grid);
  std::vector<Placement> all(grid.world_rank() == 0 ? grid.world_size() : 0);
  LS_MPI_CHECK(MPI_Gather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, 0, MPI_COMM_WORLD));
  if (grid.world_rank() != 0) return;
  std::printf("# lockstep gridcheck: %d ranks = TP%d x PP%d, backend %s\n", grid.world_size(),
              grid.layout().tp, grid.layout().pp, std::string(backend_name(backend)).c_str());
  std::printf("# %5s %4s %4s %-24s %6s %4s  %s\n", "rank", "tp", "pp", "host", "local", "gpu", "pci");
  for (const Placement& p : all) {
    const std::string gpu = p.gpu < 0 ? "-" : std::to_string(p.gpu);
    std::printf("  %5d %4d %4d %-24s %3d/%-2d %4s  %s\n", p.world_rank, p.tp_rank, p.pp_rank, p.host,
                p.local_rank, p.local_size, gpu.c_str(), p.pci[0] ? p.pci : "-");
  }
  std::fflush(stdout);
}

// Gathers the world ranks of a group's members and reduces a sum over them; both must agree
// with what the layout says the group holds. Returns the number of mismatches.
int check_group(Collectives& c, DeviceKind kind, const std::vector<int>& expected_members, int world_rank,
                const char* name) {
  const int n = c.size();
  DeviceBuffer send(kind, sizeof(std::int32_t)), gathered(kind, n * sizeof(std::int32_t)),
      reduced(kind, sizeof(std::int32_t));
  const std::int32_t me = world_rank;
  send.copy_from_host(&me, sizeof me);
  c.all_gather(send.data(), gathered.data(), 1, DType::I32);
  c.all_reduce(send.data(), reduced.data(), 1, DType::I32, ReduceOp::Sum);
  c.synchronize();
  std::vector<std::int32_t> members(n);
  std::int32_t sum = 0;
  gathered.copy_to_host(members.data(), n * sizeof(std::int32_t));
  reduced.copy_to_host(&sum, sizeof sum);
  int wrong = 0, expected_sum = 0;
  for (int i = 0; i < n; ++i) {
    expected_sum += expected_members[i];
    if (i >= static_cast<int>(expected_members.size()) || members[i] != expected_members[i]) {
      LS_ERROR(name << " group member " << i << " is world rank " << members[i] << ", expected "
                    << expected_members[i]);
      ++wrong;
    }
  }
  if (sum != expected_sum) {
    LS_ERROR(name << " all_reduce gave " << sum << ", expected " << expected_sum);
    ++wrong;
  }
  return wrong;
}

// Each stage sends its world rank to the next; each receiver checks it came from its predecessor.
int check_pipeline_links(Collectives& pp, DeviceKind kind, const RankGrid& g) {
  DeviceBuffer buf(kind, sizeof(std::int32_t));
  int wrong = 0;
  if (!g.first_stage()) {
    pp.recv(buf.data(), 1, DType::I32, g.pp_rank() - 1);
    pp.synchronize();
    std::int32_t from = -1;
    buf.copy_to_host(&from, sizeof from);
    const int expected = pipeline_prev_world_rank(g.layout(), g.world_rank());
    if (from != expected) {
      LS_ERROR("pipeline link: received world rank " << from << ", expected " << expected);
      ++wrong;
    }
  }
  if (!g.last_stage()) {
    const std::int32_t me = g.world_rank();
    buf.copy_from_host(&me, sizeof me);
    pp.send(buf.data(), 1, DType::I32, g.pp_rank() + 1);
    pp.synchronize();
  }
  return wrong;
}

}  // namespace

CLI::App* add_gridcheck_command(CLI::App& app, GridcheckOptions& opts) {
  CLI::App* cmd = app.add_subcommand("gridcheck", "Show rank placement and self-check the TP x PP grid");
  add_parallel_options(*cmd, opts.parallel);
  return cmd;
}

int run_gridcheck(const MpiEnvironment& env, const GridcheckOptions& opts) {
  auto grid = make_rank_grid(env, opts.parallel);
  if (!grid) return 2;
  const CommBackend backend = resolve_backend(opts.parallel.backend, *grid);
  CommGroups groups(*grid, backend);
  print_placements(*grid, backend);

  const GridLayout& l = grid->layout();
  std::vector<int> world_members, tp_members, pp_members;
  for (int r = 0; r < l.world(); ++r) world_members.push_back(r);
  for (int t = 0; t < l.tp; ++t) tp_members.push_back(world_rank_of(l, t, grid->pp_rank()));
  for (int p = 0; p < l.pp; ++p) pp_members.push_back(world_rank_of(l, grid->tp_rank(), p));

  const DeviceKind kind = groups.buffer_kind();
  int wrong = check_group(groups.world(), kind, world_members, grid->world_rank(), "world") +
              check_group(groups.tp(), kind, tp_members, grid->world_rank(), "TP") +
              check_group(groups.pp(), kind, pp_members, grid->world_rank(), "PP") +
              check_pipeline_links(groups.pp(), kind, *grid);
  int total = 0;
  LS_MPI_CHECK(MPI_Allreduce(&wrong, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  if (grid->world_rank() == 0) {
    if (total == 0)
      std::printf("# grid self-check OK: world, %d TP group(s) of %d, %d PP group(s) of %d, %d pipeline link(s)\n",
                  l.pp, l.tp, l.tp, l.pp, l.tp * (l.pp - 1));
    else
      std::printf("# grid self-check FAILED: %d wrong value(s)\n", total);
    std::fflush(stdout);
  }
  return total == 0 ? 0 : 1;
}

}  // namespace lockstep
