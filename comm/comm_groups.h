// The three groups a rank talks in — world, its TP group, its PP group — as Collectives of
// one backend. For NCCL it also owns the communicators and the stream; for MPI staged, the
// stream.
#pragma once

#include <memory>
#include <string_view>

#include "comm/collectives.h"
#include "kernels/device_buffer.h"

namespace lockstep {

class RankGrid;
class NcclCommunicators;
class StagingStream;

// "auto" picks NCCL when this binary has CUDA and every rank sees a GPU, else MPI.
// Collective over the world (the ranks agree on the answer).
CommBackend resolve_backend(std::string_view requested, const RankGrid& grid);

class CommGroups {
 public:
  // Collective over the world. NCCL refuses ranks that share a GPU: when any rank does, every
  // rank throws, naming the MPI-staged backend (--backend mpi with --device cuda).
  CommGroups(const RankGrid& grid, CommBackend backend);
  ~CommGroups();

  CommBackend backend() const { return backend_; }
  // Where buffers handed to these collectives must live.
  DeviceKind buffer_kind() const { return uses_device_buffers(backend_) ? DeviceKind::Cuda : DeviceKind::Cpu; }
  // A buffer for these collectives: host memory for MPI, cudaMalloc'd for MPI staged; for
  // NCCL, ncclMemAlloc'd memory, which NCCL's fast paths (and nccl-tests) use.
  DeviceBuffer allocate(std::size_t bytes) const;
  Collectives& world() { return *world_; }
  Collectives& tp() { return *tp_; }
  Collectives& pp() { return *pp_; }

 private:
  CommBackend backend_;
  std::unique_ptr<NcclCommunicators> nccl_;
  std::unique_ptr<StagingStream> staging_;
  std::unique_ptr<Collectives> world_, tp_, pp_;
};

}  // namespace lockstep
