// `commbench --diagnose` (see diagnose.h).
#include "app/commbench/diagnose.h"

#include <link.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "app/commbench/cpu_affinity.h"
#include "app/commbench/nccl_transport_log.h"
#include "comm/comm_groups.h"
#include "comm/mpi_check.h"
#include "comm/mpi_env.h"
#include "comm/rank_grid.h"
#include "kernels/device_buffer.h"
#include "kernels/gpu_topology.h"

namespace lockstep {
namespace {

// Gathers one string per rank on rank 0 (empty vector elsewhere).
std::vector<std::string> gather_strings(const std::string& mine, int rank, int size) {
  int len = static_cast<int>(mine.size());
  std::vector<int> lens(rank == 0 ? size : 0), offsets(rank == 0 ? size : 0);
  LS_MPI_CHECK(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD));
  std::string all;
  if (rank == 0) {
    int total = 0;
    for (int r = 0; r < size; ++r) { offsets[r] = total; total += lens[r]; }
    all.resize(total);
  }
  LS_MPI_CHECK(MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, 0,
                           MPI_COMM_WORLD));
  std::vector<std::string> out;
  for (int r = 0; rank == 0 && r < size; ++r) out.push_back(all.substr(offsets[r], lens[r]));
  return out;
}

std::string rank_row(const RankGrid& g) {
  const std::string pci = gpu_pci_bus_id(g.gpu());
  const std::set<int> cpus = process_cpu_affinity();
  std::set<int> nodes = numa_nodes_of(cpus);
  std::string cpu_nodes;
  for (int n : nodes) cpu_nodes += (cpu_nodes.empty() ? "" : ",") + std::to_string(n);
  const int gpu_node = pci.empty() ? -1 : pci_numa_node(pci);
  char line[512];
  std::snprintf(line, sizeof line, "  %5d  %-20s %5d  %4s  %-14s %8s  %-18s %s", g.world_rank(), g.host().c_str(),
                g.local_rank(), g.gpu() < 0 ? "-" : std::to_string(g.gpu()).c_str(), pci.empty() ? "-" : pci.c_str(),
                gpu_node < 0 ? "-" : std::to_string(gpu_node).c_str(), format_cpu_list(cpus).c_str(),
                cpu_nodes.empty() ? "-" : cpu_nodes.c_str());
  return line;
}

// Built by each node's local rank 0 over every GPU that rank can see.
std::string peer_matrix(const RankGrid& g) {
  const int n = visible_gpu_count();
  if (n == 0) return "# GPU peer matrix on " + g.host() + ": no GPUs visible\n";
  std::vector<std::string> pci(n);
  for (int i = 0; i < n; ++i) pci[i] = gpu_pci_bus_id(i);
  std::ostringstream out;
  out << "# GPU peer matrix on " << g.host() << " (NV<k>: k NVLink links, P2P: peer access over PCIe, -: none)\n#      ";
  for (int j = 0; j < n; ++j) out << "  GPU" << j;
  out << "\n";
  bool nvml = true;
  for (int i = 0; i < n; ++i) {
    char head[24];
    std::snprintf(head, sizeof head, "#  GPU%-2d", i);
    out << head;
    for (int j = 0; j < n; ++j) {
      std::string cell = "X";
      if (i != j) {
        const int links = nvlink_count(pci[i], pci[j]);
        if (links < 0) nvml = false;
        cell = links > 0 ? "NV" + std::to_string(links) : gpu_can_access_peer(i, j) ? "P2P" : "-";
      }
      char c[16];
      std::snprintf(c, sizeof c, "%6s", cell.c_str());
      out << c;
    }
    out << "\n";
  }
  if (!nvml) out << "#  (NVML not available: NVLink and PCIe peer access are not told apart)\n";
  return out.str();
}

// Shared objects this process has loaded whose name contains `needle` (Open MPI keeps only
// the selected components loaded, so this names the PML/BTL in use).
std::set<std::string> loaded_objects_matching(const std::string& needle) {
  struct Ctx { std::string needle; std::set<std::string> found; } ctx{needle, {}};
  dl_iterate_phdr([](dl_phdr_info* info, size_t, void* p) {
    auto* c = static_cast<Ctx*>(p);
    const std::string name = info->dlpi_name ? info->dlpi_name : "";
    const auto pos = name.find(c->needle);
    if (pos != std::string::npos) {
      std::string base = name.substr(pos + c->needle.size());
      base = base.substr(0, base.find('.'));
      c->found.insert(base);
    }
    return 0;
  }, &ctx);
  return ctx.found;
}

std::string mpi_summary() {
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string v(version, len);
  v = v.substr(0, v.find_first_of("\n,"));
  std::string pml, btl;
  for (const auto& s : loaded_objects_matching("mca_pml_")) pml += (pml.empty() ? "" : ",") + s;
  for (const auto& s : loaded_objects_matching("mca_btl_")) btl += (btl.empty() ? "" : ",") + s;
  const bool ucx = !loaded_objects_matching("libucp").empty();
  std::string out = "# MPI: " + v + "; pml " + (pml.empty() ? "(built in)" : pml) + "; btl " +
                    (btl.empty() ? "-" : btl) + (ucx ? "; UCX loaded" : "; UCX not loaded");
  for (const char* var : {"OMPI_MCA_pml", "OMPI_MCA_btl", "UCX_TLS", "UCX_NET_DEVICES"})
    if (const char* val = std::getenv(var)) out += std::string("; ") + var + "=" + val;
  return out + "\n";
}

// Lines of this rank's NCCL log worth shipping to rank 0.
std::string relevant_nccl_lines(const std::string& path) {
  std::ifstream in(path);
  std::string out;
  for (std::string l; std::getline(in, l);)
    if (l.find(" via ") != std::string::npos || l.find("NET/IB : ") != std::string::npos ||
        l.find("NET/Socket : ") != std::string::npos || l.find("GPU Direct RDMA") != std::string::npos ||
        l.find("Using network") != std::string::npos)
      out += l + "\n";
  return out;
}

}  // namespace

int run_diagnose(const MpiEnvironment& env, const std::string& requested_backend) {
  RankGrid grid(env, GridLayout{env.world_size(), 1});
  const CommBackend backend = resolve_backend(requested_backend, grid);
  const bool rank0 = env.world_rank() == 0;

  // NCCL reads these once, at its first call: they must be set before the communicators.
  std::string log_path;
  if (backend == CommBackend::Nccl) {
    const char* tmp = std::getenv("TMPDIR");
    log_path = std::string(tmp ? tmp : "/tmp") + "/lockstep-nccl-diag." + env.host() + "." + std::to_string(getpid()) + ".log";
    setenv("NCCL_DEBUG", "INFO", 1);
    setenv("NCCL_DEBUG_SUBSYS", "INIT,P2P,NET", 1);
    setenv("NCCL_DEBUG_FILE", log_path.c_str(), 1);
  }
  CommGroups groups(grid, backend);

  // Connect every pair the way serving will: ring/tree collectives and all-pairs P2P.
  const std::size_t count = 1 << 16;
  const int n = grid.world_size();
  DeviceBuffer a = groups.allocate(count * n * sizeof(float)), b = groups.allocate(count * n * sizeof(float));
  a.fill_bytes(0);
  groups.world().all_reduce(a.data(), b.data(), count * n, DType::F32, ReduceOp::Sum);
  groups.world().all_gather(a.data(), b.data(), count, DType::F32);
  groups.world().all_to_all(a.data(), b.data(), count, DType::F32);
  groups.world().synchronize();

  const std::vector<std::string> rows = gather_strings(rank_row(grid), env.world_rank(), n);
  const std::vector<std::string> hosts = gather_strings(grid.host(), env.world_rank(), n);
  const std::vector<std::string> matrices =
      gather_strings(grid.local_rank() == 0 && backend == CommBackend::Nccl ? peer_matrix(grid) : "", env.world_rank(), n);
  const std::vector<std::string> logs =
      gather_strings(log_path.empty() ? "" : relevant_nccl_lines(log_path), env.world_rank(), n);
  if (!log_path.empty()) std::remove(log_path.c_str());
  if (!rank0) return 0;

  std::printf("# lockstep commbench --diagnose: %d rank(s) on %zu host(s), backend %s\n#\n", n,
              std::set<std::string>(hosts.begin(), hosts.end()).size(), std::string(backend_name(backend)).c_str());
  std::printf("# %5s  %-20s %5s  %4s  %-14s %8s  %-18s %s\n", "rank", "host", "local", "gpu", "pci", "gpu-numa",
              "cpus (affinity)", "cpu-numa");
  for (const std::string& r : rows) std::printf("%s\n", r.c_str());
  std::printf("#\n");
  for (const std::string& m : matrices)
    if (!m.empty()) std::printf("%s#\n", m.c_str());

  std::vector<std::string> advice;
  if (backend == CommBackend::Nccl) {
    std::vector<TransportEdge> edges;
    std::set<std::string> net_lines;
    for (const std::string& log : logs) {
      for (const TransportEdge& e : parse_transport_edges(log)) edges.push_back(e);
      std::istringstream in(log);
      for (std::string l; std::getline(in, l);)
        if (l.find(" via ") == std::string::npos) net_lines.insert(l.substr(l.find("NCCL INFO") == std::string::npos ? 0 : l.find("NCCL INFO") + 10));
    }
    const auto summary = summarize_edges(edges);
    std::printf("# NCCL transports per rank pair (from each rank's NCCL_DEBUG=INFO log)\n");
    std::printf("# %6s %6s  %-8s %s\n", "from", "to", "same", "transport");
    for (const auto& [pair, t] : summary)
      std::printf("  %6d %6d  %-8s %s\n", pair.first, pair.second, hosts[pair.first] == hosts[pair.second] ? "node" : "network",
                  t.c_str());
    if (summary.empty()) std::printf("#  (NCCL logged no transport lines; NCCL_DEBUG_FILE may be unwritable)\n");
    for (const std::string& l : net_lines) std::printf("#  NCCL: %s\n", l.c_str());
    std::printf("#\n");
    advice = transport_advice(summary, hosts);
  } else {
    std::printf("# NCCL transports: not measured (backend mpi: no GPU on some rank, or --backend mpi)\n#\n");
  }
  std::printf("%s#\n", mpi_summary().c_str());
  std::printf("# Advice:\n");
  if (advice.empty()) advice.push_back("nothing to flag");
  for (const std::string& a : advice) std::printf("#  - %s\n", a.c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace lockstep
