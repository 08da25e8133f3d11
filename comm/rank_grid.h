// This rank's place in the TP x PP grid, with the MPI communicators of its groups:
// world, its TP group (same pipeline stage) and its PP group (same TP column), plus the
// node-local rank that picks its GPU.
#pragma once

#include <mpi.h>

#include <string>

#include "comm/grid_layout.h"

namespace lockstep {

class MpiEnvironment;

class RankGrid {
 public:
  // Collective over MPI_COMM_WORLD. The caller has checked the world size (check_world_size).
  RankGrid(const MpiEnvironment& env, GridLayout layout);
  ~RankGrid();
  RankGrid(const RankGrid&) = delete;
  RankGrid& operator=(const RankGrid&) = delete;

  const GridLayout& layout() const { return layout_; }
  int world_rank() const { return pos_.world_rank; }
  int world_size() const { return layout_.world(); }
  int tp_rank() const { return pos_.tp_rank; }
  int pp_rank() const { return pos_.pp_rank; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  int gpu() const { return gpu_; }  // -1 on the CPU backend
  // Ranks of this node on this rank's GPU, itself included: more than 1 only when a node runs
  // more ranks than it has GPUs (NCCL refuses that; the MPI-staged backend shares the GPU).
  int ranks_on_gpu() const { return ranks_on_gpu_; }
  const std::string& host() const { return host_; }
  bool first_stage() const { return pos_.pp_rank == 0; }
  bool last_stage() const { return pos_.pp_rank == layout_.pp - 1; }

  MPI_Comm world_comm() const { return MPI_COMM_WORLD; }
  MPI_Comm tp_comm() const { return tp_comm_; }
  MPI_Comm pp_comm() const { return pp_comm_; }

 private:
  GridLayout layout_;
  GridPosition pos_;
  int local_rank_ = 0;
  int local_size_ = 1;
  int gpu_ = -1;
  int ranks_on_gpu_ = 0;
  std::string host_;
  MPI_Comm tp_comm_ = MPI_COMM_NULL;
  MPI_Comm pp_comm_ = MPI_COMM_NULL;
};

}  // namespace lockstep
