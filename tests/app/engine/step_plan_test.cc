// The step plan survives serialisation exactly, and a damaged buffer is an error, not a crash.
#include "app/engine/step_plan.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

TEST(StepPlan, RoundTrips) {
  StepPlan p;
  p.step_id = 42;
  p.flags = StepPlan::kShutdown;
  p.batch.token_ids = {1, 2, 3};
  p.batch.positions = {0, 1, 7};
  p.batch.seq_of_token = {0, 0, 1};
  p.batch.block_tables = {4, 5, 9, 0};
  p.batch.max_blocks = 2;
  p.batch.logit_rows = {1, 2};
  SamplingParams a, b;
  a.temperature = 0.0f;
  b.top_k = 5;
  b.top_p = 0.9f;
  b.min_p = 0.05f;
  p.sampling = {a, b};
  p.sample_seeds = {11, 12};
  const StepPlan q = StepPlan::deserialize(p.serialize());
  EXPECT_EQ(q.step_id, 42u);
  EXPECT_EQ(q.flags, StepPlan::kShutdown);
  EXPECT_EQ(q.batch.token_ids, p.batch.token_ids);
  EXPECT_EQ(q.batch.positions, p.batch.positions);
  EXPECT_EQ(q.batch.seq_of_token, p.batch.seq_of_token);
  EXPECT_EQ(q.batch.block_tables, p.batch.block_tables);
  EXPECT_EQ(q.batch.max_blocks, 2);
  EXPECT_EQ(q.batch.logit_rows, p.batch.logit_rows);
  EXPECT_EQ(q.sampling[1].top_k, 5);
  EXPECT_FLOAT_EQ(q.sampling[1].top_p, 0.9f);
  EXPECT_FLOAT_EQ(q.sampling[0].temperature, 0.0f);
  EXPECT_EQ(q.sample_seeds, p.sample_seeds);
}

TEST(StepPlan, DamagedBuffersAreErrors) {
  StepPlan p;
  p.batch.token_ids = {1, 2};
  p.batch.positions = {0, 1};
  p.batch.seq_of_token = {0, 0};
  auto bytes = p.serialize();
  auto cut = bytes;
  cut.resize(cut.size() - 3);
  EXPECT_THROW(StepPlan::deserialize(cut), std::runtime_error);
  bytes.push_back(0);
  EXPECT_THROW(StepPlan::deserialize(bytes), std::runtime_error);
}

}  // namespace
}  // namespace lockstep
