// What a node's GPUs can reach: CUDA peer access, NVLink links between two GPUs (through NVML,
// loaded at run time so binaries run where no driver is installed), and the NUMA node of a
// PCI device. Used by `commbench --diagnose`.
#pragma once

#include <string>

namespace lockstep {

bool gpu_can_access_peer(int gpu, int peer);
// NVLink links from GPU `pci_a` to GPU `pci_b` (PCI bus ids as CUDA prints them);
// -1 when NVML is not available.
int nvlink_count(const std::string& pci_a, const std::string& pci_b);
// NUMA node of a PCI device from sysfs; -1 when unknown.
int pci_numa_node(const std::string& pci_bus_id);

}  // namespace lockstep
