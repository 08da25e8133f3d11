// NcclCommunicators (see nccl_communicators.h).
#include "comm/nccl_communicators.h"

#include "comm/mpi_check.h"
#include "comm/nccl_check.h"
#include "comm/rank_grid.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/log.h"

namespace lockstep {

NcclCommunicators::NcclCommunicators(const RankGrid& grid) {
  LS_CHECK(grid.gpu() >= 0, "the NCCL backend needs a GPU per rank but this rank sees none "
                            "(check CUDA_VISIBLE_DEVICES, or use --backend mpi)");
  LS_CUDA_CHECK(cudaSetDevice(grid.gpu()));
  LS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));

  ncclUniqueId id{};
  if (grid.world_rank() == 0) LS_NCCL_CHECK(ncclGetUniqueId(&id));
  LS_MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 28, 0)
  config.nvlinkCentricSched = 1;  // as nccl-tests sets it: lower small-message latency on NVLink
#endif
  LS_NCCL_CHECK(ncclCommInitRankConfig(&world_, grid.world_size(), id, grid.world_rank(), &config));
  LS_NCCL_CHECK(ncclCommSplit(world_, grid.pp_rank(), grid.tp_rank(), &tp_, nullptr));
  LS_NCCL_CHECK(ncclCommSplit(world_, grid.tp_rank(), grid.pp_rank(), &pp_, nullptr));
  int version = 0;
  ncclGetVersion(&version);
  LS_DEBUG("NCCL " << version << " communicators ready on GPU " << grid.gpu());
}

NcclCommunicators::~NcclCommunicators() {
  for (ncclComm_t c : {pp_, tp_, world_})
    if (c) ncclCommDestroy(c);
  if (stream_) cudaStreamDestroy(stream_);
}

}  // namespace lockstep
