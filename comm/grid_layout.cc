// GridLayout arithmetic (see grid_layout.h).
#include "comm/grid_layout.h"

#include "kernels/fatal.h"

namespace lockstep {

std::optional<std::string> check_world_size(const GridLayout& l, int world_size) {
  if (l.tp < 1 || l.pp < 1)
    return "--tensor-parallel-size and --pipeline-parallel-size must be >= 1 (got TP " +
           std::to_string(l.tp) + ", PP " + std::to_string(l.pp) + ")";
  if (l.world() == world_size) return std::nullopt;
  return "world size " + std::to_string(world_size) + " != tensor-parallel-size " +
         std::to_string(l.tp) + " x pipeline-parallel-size " + std::to_string(l.pp) + " = " +
         std::to_string(l.world()) + "; start " + std::to_string(l.world()) +
         " ranks (mpirun -np " + std::to_string(l.world()) + ") or change the sizes";
}

GridPosition position_of(const GridLayout& l, int world_rank) {
  LS_CHECK(world_rank >= 0 && world_rank < l.world(),
           "rank " << world_rank << " outside a TP" << l.tp << " x PP" << l.pp << " grid");
  return {world_rank, world_rank % l.tp, world_rank / l.tp};
}

int world_rank_of(const GridLayout& l, int tp_rank, int pp_rank) { return pp_rank * l.tp + tp_rank; }

int gpu_for_local_rank(int local_rank, int visible_gpus) {
  if (visible_gpus <= 0) return -1;
  return local_rank % visible_gpus;
}

int pipeline_prev_world_rank(const GridLayout& l, int world_rank) {
  const GridPosition p = position_of(l, world_rank);
  return p.pp_rank == 0 ? -1 : world_rank_of(l, p.tp_rank, p.pp_rank - 1);
}

int pipeline_next_world_rank(const GridLayout& l, int world_rank) {
  const GridPosition p = position_of(l, world_rank);
  return p.pp_rank == l.pp - 1 ? -1 : world_rank_of(l, p.tp_rank, p.pp_rank + 1);
}

}  // namespace lockstep
