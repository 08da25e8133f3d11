// The whole lock-step engine under mpirun (np 1: TP1, np 2: TP2, np 4: TP2xPP2) on the tiny
// transformers fixtures: the three prompts plus a repeat of the first (a prefix-cache hit),
// a token budget that forces chunked prefill, and a KV cache too small for all of them so the
// scheduler must preempt and recompute; with PP2, two plans in flight. Greedy outputs must
// still equal transformers'. Under --backend=nccl (GPU host) the stage is the CUDA backend's.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "app/engine/lockstep_engine.h"
#include "comm/comm_groups.h"
#include "model/safetensors_reader.h"
#include "tests/mpi_test_env.h"
#include "tests/stage_under_test.h"

namespace lockstep {
namespace {

struct Expected {
  std::vector<int> prompt, greedy;
  std::vector<float> margins;
};

void run_engine(const std::string& name, GridLayout layout) {
  SCOPED_TRACE(name);
  const MpiEnvironment& env = testing::mpi_env();
  const std::string dir = std::string(LOCKSTEP_FIXTURES_DIR) + "/" + name;
  std::ifstream in(std::string(LOCKSTEP_FIXTURES_DIR) + "/" + name + ".expected.json");
  std::vector<Expected> cases;
  const nlohmann::json expected = nlohmann::json::parse(in);
  for (const auto& c : expected["cases"])
    cases.push_back({c["prompt_ids"].get<std::vector<int>>(), c["greedy_ids"].get<std::vector<int>>(),
                     c["top2_margins"].get<std::vector<float>>()});
  const Expected repeat = cases[0];  // same prompt again: served partly from the prefix cache
  cases.push_back(repeat);

  const ModelConfig config = ModelConfig::from_dir(dir);
  RankGrid grid(env, layout);
  CommGroups groups(grid, testing::test_backend());
  SafetensorsCheckpoint ckpt(dir);
  CheckpointWeights weights(ckpt, config.fp8_block_rows, config.fp8_block_cols);
  constexpr int kBlocks = 14, kBlockSize = 4, kNew = 8;
  const std::unique_ptr<ForwardModel> stage = testing::make_stage(
      config, weights, groups, grid, pipeline_layer_ranges(config.num_hidden_layers, layout.pp)[grid.pp_rank()],
      kBlocks, kBlockSize);
  ASSERT_TRUE(stage);
  ForwardModel& model = *stage;
  if (grid.world_rank() != 0) {
    LockstepEngine engine(grid, model, nullptr);
    engine.run_follower();
    return;
  }
  BlockManager blocks(kBlocks, kBlockSize, /*enable_prefix_caching=*/true);
  Scheduler scheduler({/*max_num_seqs=*/4, /*max_num_batched_tokens=*/13, /*max_model_len=*/128, {}}, blocks);
  LockstepEngine engine(grid, model, &scheduler);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto s = std::make_unique<Sequence>();
    s->id = i;
    s->tokens = cases[i].prompt;
    s->sampling.temperature = 0.0f;
    s->stop.max_tokens = kNew;
    s->stop.ignore_eos = true;
    ASSERT_FALSE(scheduler.add(std::move(s)).has_value());
  }
  std::map<std::uint64_t, std::unique_ptr<Sequence>> done;
  for (int step = 0; step < 500 && !scheduler.idle(); ++step)
    for (auto& f : engine.step().finished) done[f->id] = std::move(f);
  engine.shutdown();
  // With PP stages, one plan per stage is in flight (the others wait for stage 0).
  EXPECT_EQ(engine.max_plans_in_flight(), layout.pp);
  ASSERT_EQ(done.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Sequence& s = *done[i];
    ASSERT_EQ(s.generated(), kNew);
    for (int t = 0; t < kNew; ++t) {
      const int got = s.tokens[s.prompt_len + t];
      if (got == cases[i].greedy[t]) continue;
      EXPECT_LT(cases[i].margins[t], testing::clear_margin()) << "request " << i << " step " << t << ": token " << got
                                            << ", transformers " << cases[i].greedy[t];
      break;  // after a near-tie the continuations may differ
    }
  }
  EXPECT_GT(scheduler.preemptions(), 0u) << "the test meant to exercise preemption";
  EXPECT_GT(blocks.prefix_hits(), 0u) << "the repeated prompt should hit the prefix cache";
  EXPECT_EQ(blocks.free_blocks(), kBlocks);
  EXPECT_TRUE(blocks.consistent());
}

GridLayout layout_for(int world) {
  if (world == 4) return {2, 2};
  return {world, 1};
}

TEST(EngineParity, Qwen2) { run_engine("qwen2-tiny", layout_for(testing::mpi_env().world_size())); }
TEST(EngineParity, Qwen3) { run_engine("qwen3-tiny", layout_for(testing::mpi_env().world_size())); }
TEST(EngineParity, Qwen3Yarn) { run_engine("qwen3-yarn-tiny", layout_for(testing::mpi_env().world_size())); }
TEST(EngineParity, Llama) { run_engine("llama-tiny", layout_for(testing::mpi_env().world_size())); }
// MLA's latent cache through chunked prefill, prefix-cache hits and recomputation.
TEST(EngineParity, DeepseekV3) {
  run_engine("deepseek-v3-tiny", layout_for(testing::mpi_env().world_size()));
}

}  // namespace
}  // namespace lockstep
