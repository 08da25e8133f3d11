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
    n.ok = n.init && n.handle_by_pci && n.link_state && n.remote_pci && n.init() == 0;
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
  NvmlDevice dev = nullptr;
  if (n.handle_by_pci(pci_a.c_str(), &dev) != 0) return -1;
  const PciAddress want = parse_pci(pci_b);
  int links = 0;
  for (unsigned link = 0; link < 64; ++link) {
    int active = 0;
    if (n.link_state(dev, link, &active) != 0) continue;
    if (active != 1) continue;
    NvmlPciInfo remote{};
    if (n.remote_pci(dev, link, &remote) != 0) continue;
    if (want.valid && remote.domain == want.domain && remote.bus == want.bus && remote.device == want.device) ++links;
  }
  return links;
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
