// Scheduling policy: chunked prefill within the token budget, decode batching, sequence
// limit, preemption by recompute when blocks run out, stop rules, abort; and a randomised mix
// of all of them that must never leak or double-free a block.
#include "app/engine/scheduler.h"

#include <gtest/gtest.h>

#include <random>

namespace lockstep {
namespace {

std::unique_ptr<Sequence> make_seq(std::uint64_t id, int prompt_len, int max_tokens, int base = 0) {
  auto s = std::make_unique<Sequence>();
  s->id = id;
  for (int i = 0; i < prompt_len; ++i) s->tokens.push_back(base + i);
  s->stop.max_tokens = max_tokens;
  s->stop.ignore_eos = true;
  return s;
}

std::vector<int> sample_all(const std::vector<ScheduledChunk>& chunks, int token = 5) {
  return std::vector<int>(chunks.size(), token);
}

TEST(Scheduler, ChunkedPrefillRespectsTheTokenBudget) {
  BlockManager bm(64, 4, false);
  Scheduler s({8, 10, 512, {}}, bm);
  ASSERT_FALSE(s.add(make_seq(1, 23, 2)));
  auto c = s.schedule();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].start, 0);
  EXPECT_EQ(c[0].count, 10);
  EXPECT_FALSE(c[0].sample);
  s.complete(c, sample_all(c));
  c = s.schedule();
  EXPECT_EQ(c[0].start, 10);
  EXPECT_EQ(c[0].count, 10);
  s.complete(c, sample_all(c));
  c = s.schedule();
  EXPECT_EQ(c[0].count, 3);
  EXPECT_TRUE(c[0].sample);  // the prompt is complete: sample the first token
  s.complete(c, sample_all(c));
  c = s.schedule();
  EXPECT_EQ(c[0].count, 1);  // decode
  auto done = s.complete(c, sample_all(c));
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0]->finish, FinishReason::Length);
  EXPECT_EQ(done[0]->generated(), 2);
  EXPECT_EQ(bm.free_blocks(), 64);
}

TEST(Scheduler, DecodesGoFirstAndTheSequenceLimitHolds) {
  BlockManager bm(64, 4, false);
  Scheduler s({2, 100, 512, {}}, bm);
  for (int i = 1; i <= 3; ++i) ASSERT_FALSE(s.add(make_seq(i, 5, 4)));
  auto c = s.schedule();
  EXPECT_EQ(c.size(), 2u);  // --max-num-seqs 2
  EXPECT_EQ(s.num_waiting(), 1u);
  s.complete(c, sample_all(c));
  c = s.schedule();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].count, 1);
  EXPECT_EQ(c[1].count, 1);
}

TEST(Scheduler, StopsOnEosStopTokensAndContextLength) {
  BlockManager bm(64, 4, false);
  Scheduler s({8, 100, 12, {2}}, bm);
  auto eos = make_seq(1, 5, 100);
  eos->stop.ignore_eos = false;
  auto stop_id = make_seq(2, 5, 100);
  stop_id->stop.stop_token_ids = {7};
  ASSERT_FALSE(s.add(std::move(eos)));
  ASSERT_FALSE(s.add(std::move(stop_id)));
  ASSERT_FALSE(s.add(make_seq(3, 5, 100)));
  auto c = s.schedule();
  auto done = s.complete(c, {2, 7, 2});  // seq 3 ignores EOS
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0]->finish, FinishReason::Stop);
  EXPECT_EQ(done[1]->finish, FinishReason::Stop);
  int steps = 0;
  while (!s.idle() && steps++ < 20) {
    c = s.schedule();
    done = s.complete(c, sample_all(c));
  }
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0]->finish, FinishReason::Length);
  EXPECT_EQ(done[0]->tokens.size(), 12u);  // stopped at --max-model-len
  EXPECT_TRUE(s.add(make_seq(9, 12, 1)).has_value());  // a prompt that cannot fit is refused
}

TEST(Scheduler, PreemptsTheNewestAndRecomputesIt) {
  BlockManager bm(6, 4, false);  // 24 token slots
  Scheduler s({8, 100, 512, {}}, bm);
  ASSERT_FALSE(s.add(make_seq(1, 8, 6)));
  ASSERT_FALSE(s.add(make_seq(2, 8, 6, 100)));
  auto c = s.schedule();
  ASSERT_EQ(c.size(), 2u);  // 2 + 2 blocks used... 2 left
  s.complete(c, sample_all(c));
  bool preempted = false;
  std::vector<std::unique_ptr<Sequence>> finished;
  for (int step = 0; step < 50 && !s.idle(); ++step) {
    c = s.schedule();
    preempted |= s.preemptions() > 0;
    for (auto& f : s.complete(c, sample_all(c))) finished.push_back(std::move(f));
  }
  EXPECT_TRUE(preempted);
  ASSERT_EQ(finished.size(), 2u);
  for (auto& f : finished) EXPECT_EQ(f->generated(), 6);
  EXPECT_EQ(bm.free_blocks(), 6);
}

TEST(Scheduler, RandomMixNeverLeaksBlocks) {
  std::mt19937 rng(12345);
  for (bool prefix : {false, true}) {
    BlockManager bm(40, 4, prefix);
    Scheduler s({6, 24, 96, {3}}, bm);
    std::uint64_t next_id = 1;
    std::vector<std::uint64_t> live;
    for (int step = 0; step < 3000; ++step) {
      const int action = rng() % 10;
      if (action < 3) {
        auto seq = make_seq(next_id, 1 + rng() % 40, 1 + rng() % 30, (rng() % 3) * 1000);  // shared prefixes
        seq->stop.ignore_eos = rng() % 2;
        if (!s.add(std::move(seq))) live.push_back(next_id);
        ++next_id;
      } else if (action == 3 && !live.empty()) {
        s.abort(live[rng() % live.size()]);
      }
      auto c = s.schedule();
      std::vector<int> sampled;
      for (std::size_t i = 0; i < c.size(); ++i) sampled.push_back(rng() % 8);
      s.complete(c, sampled);
      ASSERT_TRUE(bm.consistent()) << "step " << step;
    }
    for (std::uint64_t id : live) s.abort(id);
    EXPECT_TRUE(s.idle());
    EXPECT_EQ(bm.free_blocks(), 40) << "prefix caching " << prefix;
    EXPECT_EQ(bm.referenced_blocks(), 0);
    EXPECT_GT(s.preemptions(), 0u);
  }
}

}  // namespace
}  // namespace lockstep
