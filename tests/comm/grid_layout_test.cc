// The TP x PP rank arithmetic: rank = pp_rank * TP + tp_rank, GPU = local rank mod GPUs,
// pipeline neighbours, and the world-size message.
#include "comm/grid_layout.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

TEST(GridLayout, RankOrderIsTpFastest) {
  const GridLayout l{4, 2};
  EXPECT_EQ(l.world(), 8);
  for (int r = 0; r < 8; ++r) {
    const GridPosition p = position_of(l, r);
    EXPECT_EQ(p.tp_rank, r % 4);
    EXPECT_EQ(p.pp_rank, r / 4);
    EXPECT_EQ(world_rank_of(l, p.tp_rank, p.pp_rank), r);
  }
}

TEST(GridLayout, SixteenRanksTp8Pp2) {
  const GridLayout l{8, 2};
  EXPECT_EQ(position_of(l, 11).tp_rank, 3);
  EXPECT_EQ(position_of(l, 11).pp_rank, 1);
  EXPECT_EQ(world_rank_of(l, 7, 1), 15);
}

TEST(GridLayout, PipelineNeighbours) {
  const GridLayout l{2, 3};  // ranks: stage0 {0,1}, stage1 {2,3}, stage2 {4,5}
  EXPECT_EQ(pipeline_prev_world_rank(l, 0), -1);
  EXPECT_EQ(pipeline_next_world_rank(l, 0), 2);
  EXPECT_EQ(pipeline_prev_world_rank(l, 3), 1);
  EXPECT_EQ(pipeline_next_world_rank(l, 3), 5);
  EXPECT_EQ(pipeline_next_world_rank(l, 5), -1);
}

TEST(GridLayout, GpuFromLocalRank) {
  EXPECT_EQ(gpu_for_local_rank(0, 8), 0);
  EXPECT_EQ(gpu_for_local_rank(7, 8), 7);
  EXPECT_EQ(gpu_for_local_rank(9, 8), 1);  // oversubscribed node wraps around
  EXPECT_EQ(gpu_for_local_rank(3, 1), 0);  // one visible GPU per rank (Slurm --gpus-per-task)
  EXPECT_EQ(gpu_for_local_rank(2, 0), -1); // no GPU: CPU backend
}

TEST(GridLayout, WorldSizeMismatchIsOneClearLine) {
  EXPECT_FALSE(check_world_size({2, 2}, 4).has_value());
  const auto msg = check_world_size({2, 2}, 3);
  ASSERT_TRUE(msg.has_value());
  EXPECT_EQ(*msg, "world size 3 != tensor-parallel-size 2 x pipeline-parallel-size 2 = 4; "
                  "start 4 ranks (mpirun -np 4) or change the sizes");
  EXPECT_EQ(msg->find('\n'), std::string::npos);
  EXPECT_TRUE(check_world_size({0, 1}, 1).has_value());
}

}  // namespace
}  // namespace lockstep
