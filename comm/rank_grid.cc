// RankGrid (see rank_grid.h).
#include "comm/rank_grid.h"

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
  LS_MPI_CHECK(MPI_Comm_free(&local));
  gpu_ = gpu_for_local_rank(local_rank_, visible_gpu_count());
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
