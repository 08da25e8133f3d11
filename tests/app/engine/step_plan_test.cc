// The step plan survives serialisation exactly, and a damaged buffer is an error, not a crash.
#include "app/engine/step_plan.h"

#include <gtest/gtest.h>

#include <cstring>

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
  b.repetition_penalty = 1.3f;
  b.frequency_penalty = -0.5f;
  b.presence_penalty = 0.25f;
  b.logprobs = 7;
  b.logit_bias = {{42, 100.0f}, {7, -3.5f}};
  p.sampling = {a, b};
  p.sample_seeds = {11, 12};
  p.history = {5, 6, 7, 8};
  p.history_offsets = {0, 0, 4};
  p.history_prompt_len = {0, 3};
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
  EXPECT_FLOAT_EQ(q.sampling[1].repetition_penalty, 1.3f);
  EXPECT_FLOAT_EQ(q.sampling[1].frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(q.sampling[1].presence_penalty, 0.25f);
  EXPECT_EQ(q.sampling[1].logprobs, 7);
  EXPECT_EQ(q.sampling[0].logprobs, -1);
  EXPECT_EQ(q.history, p.history);
  EXPECT_EQ(q.history_offsets, p.history_offsets);
  EXPECT_EQ(q.history_prompt_len, p.history_prompt_len);
  EXPECT_TRUE(q.sampling[0].logit_bias.empty());
  EXPECT_EQ(q.sampling[1].logit_bias, b.logit_bias);
  EXPECT_TRUE(q.forced_ids.empty());
}

TEST(StepPlan, ForcedPromptRowsRoundTripAndMustMatchTheRows) {
  StepPlan p;
  p.batch.token_ids = {1, 2};
  p.batch.positions = {0, 1};
  p.batch.seq_of_token = {0, 0};
  p.batch.logit_rows = {0, 1};
  p.sampling = {SamplingParams{}, SamplingParams{}};
  p.sample_seeds = {0, 1};
  p.forced_ids = {2, -1};  // row 0 scores prompt token 2; row 1 is drawn
  EXPECT_EQ(StepPlan::deserialize(p.serialize()).forced_ids, p.forced_ids);
  p.forced_ids = {2};
  EXPECT_THROW(StepPlan::deserialize(p.serialize()), std::runtime_error);
}

// One token of one sequence, its row sampled with `sp`.
StepPlan one_row_plan(const SamplingParams& sp = {}) {
  StepPlan p;
  p.batch.token_ids = {1};
  p.batch.positions = {0};
  p.batch.seq_of_token = {0};
  p.batch.logit_rows = {0};
  p.sampling = {sp};
  p.sample_seeds = {1};
  return p;
}

TEST(StepPlan, LogitBiasesThatDisagreeWithTheRowsAreErrors) {
  SamplingParams sp;
  sp.logit_bias = {{3, 1.0f}};
  const StepPlan p = one_row_plan(sp);
  std::vector<std::uint8_t> bytes = p.serialize();
  EXPECT_EQ(StepPlan::deserialize(bytes).sampling[0].logit_bias, sp.logit_bias);
  // The last vector is bias_values (u64 length 1, one float): drop the float and say length 0,
  // so that the ids and values disagree.
  bytes.resize(bytes.size() - sizeof(float));
  const std::uint64_t zero = 0;
  std::memcpy(bytes.data() + bytes.size() - sizeof(zero), &zero, sizeof(zero));
  EXPECT_THROW(StepPlan::deserialize(bytes), std::runtime_error);
}

TEST(StepPlan, HistoriesThatDisagreeWithTheRowsAreErrors) {
  StepPlan p = one_row_plan();
  p.history = {1, 2};
  p.history_offsets = {0, 3};  // past the end
  p.history_prompt_len = {1};
  EXPECT_THROW(StepPlan::deserialize(p.serialize()), std::runtime_error);
  p.history_offsets = {0, 2};
  p.history_prompt_len = {5};  // longer than the history
  EXPECT_THROW(StepPlan::deserialize(p.serialize()), std::runtime_error);
  p.history_prompt_len = {2};
  EXPECT_NO_THROW(StepPlan::deserialize(p.serialize()));
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
