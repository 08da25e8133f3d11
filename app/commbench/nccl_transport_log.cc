// NCCL transport log parsing and advice (see nccl_transport_log.h).
#include "app/commbench/nccl_transport_log.h"

#include <regex>
#include <set>
#include <sstream>

namespace lockstep {

std::string classify_transport(const std::string& via) {
  if (via.rfind("P2P", 0) == 0) return "P2P";
  if (via.rfind("SHM", 0) == 0) return "SHM";
  if (via.rfind("NET/IB", 0) == 0) return via.find("GDRDMA") != std::string::npos ? "NET/IB+GDRDMA" : "NET/IB";
  if (via.rfind("NET/Socket", 0) == 0) return "NET/Socket";
  if (via.rfind("NET/", 0) == 0) {  // other net plugins (e.g. NET/AWS Libfabric): keep the name, mark GDR
    const auto second = via.find('/', 4);
    const std::string name = via.substr(0, second);
    return via.find("GDRDMA") != std::string::npos ? name + "+GDRDMA" : name;
  }
  return via;
}

std::vector<TransportEdge> parse_transport_edges(const std::string& log) {
  static const std::regex line(R"(Channel \d+/\d+ : (\d+)\[[0-9a-fA-Fx]+\] -> (\d+)\[[0-9a-fA-Fx]+\](?: \[(?:send|receive)\])? via (\S+))");
  std::vector<TransportEdge> edges;
  std::istringstream in(log);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_search(l, m, line))
      edges.push_back({std::stoi(m[1].str()), std::stoi(m[2].str()), classify_transport(m[3].str())});
  }
  return edges;
}

std::map<std::pair<int, int>, std::string> summarize_edges(const std::vector<TransportEdge>& edges) {
  std::map<std::pair<int, int>, std::set<std::string>> sets;
  for (const TransportEdge& e : edges) sets[{e.from, e.to}].insert(e.transport);
  std::map<std::pair<int, int>, std::string> out;
  for (const auto& [pair, s] : sets) {
    std::string joined;
    for (const std::string& t : s) joined += (joined.empty() ? "" : ",") + t;
    out[pair] = joined;
  }
  return out;
}

std::vector<std::string> transport_advice(const std::map<std::pair<int, int>, std::string>& summary,
                                          const std::vector<std::string>& host_of) {
  std::vector<std::string> advice;
  auto host = [&](int r) { return r >= 0 && r < static_cast<int>(host_of.size()) ? host_of[r] : std::string("?"); };
  int socket_pairs = 0, ib_no_gdr = 0, intra_not_p2p = 0, inter = 0, intra = 0;
  std::string socket_example, nogdr_example, intra_example;
  for (const auto& [pair, t] : summary) {
    const bool cross = host(pair.first) != host(pair.second);
    const std::string label = std::to_string(pair.first) + "->" + std::to_string(pair.second);
    if (cross) {
      ++inter;
      if (t.find("NET/Socket") != std::string::npos) { ++socket_pairs; if (socket_example.empty()) socket_example = label; }
      else if (t.find("NET/IB") != std::string::npos && t.find("GDRDMA") == std::string::npos) {
        ++ib_no_gdr;
        if (nogdr_example.empty()) nogdr_example = label;
      }
    } else {
      ++intra;
      if (t.find("P2P") == std::string::npos) { ++intra_not_p2p; if (intra_example.empty()) intra_example = label + " (" + t + ")"; }
    }
  }
  if (socket_pairs)
    advice.push_back(std::to_string(socket_pairs) + " inter-node rank pair(s) (e.g. " + socket_example +
                     ") use NET/Socket (TCP): multi-node decode will crawl. Check that the InfiniBand/RoCE "
                     "stack is visible (ibv_devinfo), point NCCL at it with NCCL_IB_HCA=mlx5_0,mlx5_1,... "
                     "(your HCAs), keep NCCL_IB_DISABLE unset, and set NCCL_SOCKET_IFNAME to the "
                     "interface for bootstrap (e.g. ib0 or the cluster network, never lo/docker0).");
  if (ib_no_gdr)
    advice.push_back(std::to_string(ib_no_gdr) + " inter-node rank pair(s) (e.g. " + nogdr_example +
                     ") use NET/IB without GPUDirect RDMA: data is staged through host memory. Load the "
                     "nvidia-peermem kernel module (modprobe nvidia-peermem) or use DMA-BUF, and allow it "
                     "across the PCIe topology with NCCL_NET_GDR_LEVEL=PHB (or SYS).");
  if (intra_not_p2p)
    advice.push_back(std::to_string(intra_not_p2p) + " same-node rank pair(s) (e.g. " + intra_example +
                     ") do not use P2P (NVLink/PCIe peer access): check `nvidia-smi topo -m`, that "
                     "CUDA_VISIBLE_DEVICES exposes all local GPUs to every rank, and IOMMU/ACS settings.");
  if (advice.empty() && !summary.empty())
    advice.push_back("OK: " + std::to_string(intra) + " same-node pair(s) over P2P" +
                     (inter ? ", " + std::to_string(inter) + " inter-node pair(s) over NET/IB with GPUDirect RDMA"
                            : std::string()) + ".");
  return advice;
}

}  // namespace lockstep
