// `lockstep commbench --diagnose`: where every rank runs (host, GPU, PCI bus id, NUMA node,
// CPU affinity), the GPU peer matrix of each node (NVLink / P2P / none), the transport NCCL
// chose for every rank pair (read from NCCL's own INFO log of each rank), the MPI transport,
// and plain advice when inter-node traffic goes over sockets or GPUDirect RDMA is off.
#pragma once

#include <string>

namespace lockstep {

class MpiEnvironment;

int run_diagnose(const MpiEnvironment& env, const std::string& backend);

}  // namespace lockstep
