// RankGrid (see rank_grid.h).
#include "comm/rank_grid.h"

#include <cstdio>
#include <cstring>
#include <vector>

#include "comm/mpi_check.h"
#include "comm/mpi_env.h"
#include "kernels/device_buffer.h"
#include "kernels/log.h"

namespace lockstep {

RankGrid::RankGrid(const MpiEnvironment& env, GridLayout layout) : layout_(layout), host_(env.host()) {
  LS_CHECK(!check_world_size(layout, env.world_size()), *check_world_size(layout, env.world_size()));
  pos_ = position_of(layout, env.world_rank());

  MPI_Comm local = MPI_COMM_NULL;
  LS_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, pos_.world_rank,
                                   MPI_INFO_NULL, &local));
  LS_MPI_CHECK(MPI_Comm_rank(local, &local_rank_));
  LS_MPI_CHECK(MPI_Comm_size(local, &local_size_));
  gpu_ = gpu_for_local_rank(local_rank_, visible_gpu_count());
  // Ranks of this node on the same physical GPU, by PCI bus id: CUDA_VISIBLE_DEVICES may show
  // each rank its own GPU as device 0 (Slurm --gpus-per-task), so device numbers cannot tell.
  constexpr int kBusIdChars = 32;
  char mine[kBusIdChars] = {};
  if (gpu_ >= 0) std::snprintf(mine, sizeof mine, "%s", gpu_pci_bus_id(gpu_).c_str());
  std::vector<char> all(static_cast<std::size_t>(kBusIdChars) * local_size_);
  LS_MPI_CHECK(MPI_Allgather(mine, kBusIdChars, MPI_CHAR, all.data(), kBusIdChars, MPI_CHAR, local));
  for (int r = 0; r < local_size_ && gpu_ >= 0; ++r)
    ranks_on_gpu_ += std::strncmp(all.data() + static_cast<std::size_t>(r) * kBusIdChars, mine, kBusIdChars) == 0;
  LS_MPI_CHECK(MPI_Comm_free(&local));
  select_gpu(gpu_);  // before any CUDA allocation or NCCL call of this rank

  // TP group: same stage, ordered by tp_rank. PP group: same TP column, ordered by stage.
  LS_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, pos_.pp_rank, pos_.tp_rank, &tp_comm_));
  LS_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, pos_.tp_rank, pos_.pp_rank, &pp_comm_));
  LS_MPI_CHECK(MPI_Comm_set_errhandler(tp_comm_, MPI_ERRORS_RETURN));
  LS_MPI_CHECK(MPI_Comm_set_errhandler(pp_comm_, MPI_ERRORS_RETURN));

  ProcessIdentity id;
  id.world_rank = pos_.world_rank;
  id.tp_rank = pos_.tp_rank;
  id.pp_rank = pos_.pp_rank;
  id.host = host_;
  set_process_identity(id);
}

RankGrid::~RankGrid() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (tp_comm_ != MPI_COMM_NULL) MPI_Comm_free(&tp_comm_);
  if (pp_comm_ != MPI_COMM_NULL) MPI_Comm_free(&pp_comm_);
}

}  // namespace lockstep
