// NCCL bootstrap over MPI: rank 0 creates the ncclUniqueId and broadcasts it over
// MPI_COMM_WORLD, every rank joins the world communicator on its GPU, and the TP and PP
// groups are split from it (ncclCommSplit with the same colours as the MPI groups).
// Owns the communicators and the CUDA stream the collectives run on.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

namespace lockstep {

class RankGrid;

class NcclCommunicators {
 public:
  explicit NcclCommunicators(const RankGrid& grid);  // collective over the world
  ~NcclCommunicators();
  NcclCommunicators(const NcclCommunicators&) = delete;
  NcclCommunicators& operator=(const NcclCommunicators&) = delete;

  ncclComm_t world() const { return world_; }
  ncclComm_t tp() const { return tp_; }
  ncclComm_t pp() const { return pp_; }
  cudaStream_t stream() const { return stream_; }

 private:
  ncclComm_t world_ = nullptr;
  ncclComm_t tp_ = nullptr;
  ncclComm_t pp_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace lockstep
