// GPU topology queries (see gpu_topology.h). NVML is declared here with the few calls we use
// (its C ABI is stable; the toolkit on CI ships no nvml.h) and opened with dlopen.
#include "kernels/gpu_topology.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>

#if LOCKSTEP_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace lockstep {
namespace {

struct PciAddress {
  unsigned domain = 0, bus = 0, device = 0;
  bool valid = false;
};

PciAddress parse_pci(const std::string& id) {
  PciAddress a;
  unsigned function = 0;
  a.valid = std::sscanf(id.c_str(), "%x:%x:%x.%x", &a.domain, &a.bus, &a.device, &function) >= 3;
  return a;
}

// The subset of NVML's ABI this file uses (nvml.h, NVML API version 12+).
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlPciInfo {
  char bus_id_legacy[16];
  unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
  char bus_id[32];
};
struct Nvml {
  int (*init)() = nullptr;
  int (*handle_by_pci)(const char*, NvmlDevice*) = nullptr;
  int (*link_state)(NvmlDevice, unsigned, int*) = nullptr;
  int (*remote_pci)(NvmlDevice, unsigned, NvmlPciInfo*) = nullptr;
  int (*p2p_status)(NvmlDevice, NvmlDevice, int, int*) = nullptr;
  bool ok = false;
};

const Nvml& nvml() {
  static const Nvml lib = [] {
    Nvml n;
    void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return n;
    n.init = reinterpret_cast<int (*)()>(dlsym(h, "nvmlInit_v2"));
    n.handle_by_pci = reinterpret_cast<int (*)(const char*, NvmlDevice*)>(dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2"));
    n.link_state = reinterpret_cast<int (*)(NvmlDevice, unsigned, int*)>(dlsym(h, "nvmlDeviceGetNvLinkState"));
    n.remote_pci = reinterpret_cast<int (*)(NvmlDevice, unsigned, NvmlPciInfo*)>(dlsym(h, "nvmlDeviceGetNvLinkRemotePciInfo_v2"));
    n.p2p_status = reinterpret_cast<int (*)(NvmlDevice, NvmlDevice, int, int*)>(dlsym(h, "nvmlDeviceGetP2PStatus"));
    n.ok = n.init && n.handle_by_pci && n.link_state && n.remote_pci && n.p2p_status && n.init() == 0;
    return n;
  }();
  return lib;
}

}  // namespace

bool gpu_can_access_peer(int gpu, int peer) {
#if LOCKSTEP_WITH_CUDA
  int can = 0;
  if (cudaDeviceCanAccessPeer(&can, gpu, peer) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return can != 0;
#else
  (void)gpu;
  (void)peer;
  return false;
#endif
}

int nvlink_count(const std::string& pci_a, const std::string& pci_b) {
  const Nvml& n = nvml();
  if (!n.ok) return -1;
  NvmlDevice a = nullptr, b = nullptr;
  if (n.handle_by_pci(pci_a.c_str(), &a) != 0 || n.handle_by_pci(pci_b.c_str(), &b) != 0) return -1;
  constexpr int kCapsNvlink = 2, kStatusOk = 0;  // NVML_P2P_CAPS_INDEX_NVLINK, NVML_P2P_STATUS_OK
  int status = -1;
  if (n.p2p_status(a, b, kCapsNvlink, &status) != 0 || status != kStatusOk) return 0;
  // Links straight to b; on NVSwitch boards (HGX) every active link reaches every peer.
  const PciAddress want = parse_pci(pci_b);
  int direct = 0, active_links = 0;
  for (unsigned link = 0; link < 64; ++link) {
    int active = 0;
    if (n.link_state(a, link, &active) != 0 || active != 1) continue;
    ++active_links;
    NvmlPciInfo remote{};
    if (n.remote_pci(a, link, &remote) == 0 && want.valid && remote.domain == want.domain && remote.bus == want.bus &&
        remote.device == want.device)
      ++direct;
  }
  return direct > 0 ? direct : active_links;
}

int pci_numa_node(const std::string& pci_bus_id) {
  const PciAddress a = parse_pci(pci_bus_id);
  if (!a.valid) return -1;
  char path[128];
  std::snprintf(path, sizeof path, "/sys/bus/pci/devices/%04x:%02x:%02x.0/numa_node", a.domain, a.bus, a.device);
  std::ifstream in(path);
  int node = -1;
  if (!(in >> node)) return -1;
  return node;
}

}  // namespace lockstep
