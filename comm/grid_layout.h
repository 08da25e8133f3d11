// Pure rank arithmetic of the TP x PP grid (no MPI), so it can be unit-tested directly:
//   world = TP x PP, rank = pp_rank * TP + tp_rank, GPU = local rank mod visible GPUs.
#pragma once

#include <optional>
#include <string>

namespace lockstep {

struct GridLayout {
  int tp = 1;  // tensor-parallel size: ranks that split every layer
  int pp = 1;  // pipeline-parallel size: stages that split the layer stack
  int world() const { return tp * pp; }
};

struct GridPosition {
  int world_rank = 0;
  int tp_rank = 0;
  int pp_rank = 0;
};

// nullopt when the layout fits the world, else the one-line message rank 0 prints.
std::optional<std::string> check_world_size(const GridLayout& layout, int world_size);

GridPosition position_of(const GridLayout& layout, int world_rank);
int world_rank_of(const GridLayout& layout, int tp_rank, int pp_rank);

// -1 when there is no GPU (CPU backend).
int gpu_for_local_rank(int local_rank, int visible_gpus);

// World ranks of the previous / next pipeline stage in this rank's TP column, -1 at the ends.
int pipeline_prev_world_rank(const GridLayout& layout, int world_rank);
int pipeline_next_world_rank(const GridLayout& layout, int world_rank);

}  // namespace lockstep
