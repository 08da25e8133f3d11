// Scheduling policy: chunked prefill within the token budget, decode batching, sequence
// limit, preemption by recompute when blocks run out, stop rules, abort; plans in flight with
// pipeline parallelism (shares, no preemption or removal of in-flight work); and randomised
// mixes of all of them that must never leak or double-free a block.
#include "app/engine/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
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

// Prompt logprobs: a row per prompt position, so a chunk is cut to the step's rows
// (max_num_seqs), a row is kept for each other running sequence, and no cached prefix is used.
TEST(Scheduler, PromptLogprobChunksFitTheRowsAndSkipThePrefixCache) {
  BlockManager bm(64, 4, true);
  Scheduler s({4, 100, 512, {}}, bm);
  ASSERT_FALSE(s.add(make_seq(1, 12, 2)));  // caches its prompt's blocks
  auto c = s.schedule();
  s.complete(c, sample_all(c));
  auto scored = make_seq(2, 12, 2);  // the same prompt
  scored->sampling.prompt_logprobs = 1;
  ASSERT_FALSE(s.add(std::move(scored)));
  c = s.schedule();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].count, 1);  // sequence 1 decodes (its row)
  EXPECT_EQ(c[1].start, 0);  // no cached prefix
  EXPECT_EQ(c[1].count, 3);  // 4 rows - 1 taken: 3 prompt positions
  EXPECT_FALSE(c[1].sample);
  EXPECT_EQ(c[1].seq->prompt_rows(c[1].start, c[1].count), 3);
  s.complete(c, sample_all(c));
  for (int step = 0; step < 8 && !c.empty(); ++step) {
    c = s.schedule();
    int rows = 0;
    for (const ScheduledChunk& k : c) rows += k.seq->prompt_rows(k.start, k.count) + (k.sample ? 1 : 0);
    EXPECT_LE(rows, 4) << "step " << step;
    s.complete(c, sample_all(c));
  }
  EXPECT_TRUE(s.idle());
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

TEST(Scheduler, PipelinePlansSplitTheSequencesAndSkipThoseInFlight) {
  BlockManager bm(64, 4, false);
  Scheduler s({8, 100, 512, {}, /*pipeline_depth=*/2}, bm);
  for (int i = 1; i <= 4; ++i) ASSERT_FALSE(s.add(make_seq(i, 5, 3, 10 * i)));
  auto a = s.schedule();
  auto b = s.schedule();
  ASSERT_EQ(a.size(), 2u);  // half of the 4 sequences each
  ASSERT_EQ(b.size(), 2u);
  for (const auto& c : a)
    for (const auto& d : b) EXPECT_NE(c.seq, d.seq);
  EXPECT_TRUE(s.schedule().empty());  // everything is in flight
  s.complete(a, sample_all(a));
  auto c = s.schedule();  // a's sequences are back, b's are still in flight
  ASSERT_EQ(c.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(c[i].seq, a[i].seq);
    EXPECT_EQ(c[i].count, 1);  // decode
  }
  s.complete(b, sample_all(b));
  s.complete(c, sample_all(c));
}

TEST(Scheduler, AbortInFlightTakesEffectWhenItsPlanCompletes) {
  BlockManager bm(16, 4, false);
  Scheduler s({8, 100, 512, {}, /*pipeline_depth=*/2}, bm);
  ASSERT_FALSE(s.add(make_seq(1, 6, 4)));
  ASSERT_FALSE(s.add(make_seq(2, 6, 4, 100)));
  auto a = s.schedule();
  ASSERT_EQ(a.size(), 1u);
  const std::uint64_t id = a[0].seq->id;
  EXPECT_TRUE(s.abort(id));
  EXPECT_FALSE(s.abort(id));            // once
  EXPECT_EQ(bm.free_blocks(), 16 - 2);  // its plan may still write its blocks: kept until it completes
  EXPECT_EQ(s.num_running(), 1u);
  auto b = s.schedule();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_NE(b[0].seq->id, id);
  EXPECT_TRUE(s.complete(a, sample_all(a)).empty());  // dropped, no token, not "finished"
  EXPECT_EQ(bm.free_blocks(), 16 - 2);
  EXPECT_EQ(s.num_running(), 1u);
  s.complete(b, sample_all(b));
  EXPECT_TRUE(s.abort(b[0].seq->id));  // not in flight: removed at once
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(bm.free_blocks(), 16);
}

TEST(Scheduler, NeverPreemptsASequenceInFlight) {
  BlockManager bm(5, 4, false);  // 20 token slots
  Scheduler s({8, 100, 512, {}, /*pipeline_depth=*/2}, bm);
  ASSERT_FALSE(s.add(make_seq(1, 8, 8)));
  ASSERT_FALSE(s.add(make_seq(2, 8, 8, 100)));
  auto a = s.schedule();  // seq 1: 2 blocks
  auto b = s.schedule();  // seq 2: 2 blocks; 1 left
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  s.complete(a, sample_all(a));
  // seq 1 now needs a 3rd block (9 tokens), then a 4th: the only other sequence is in flight,
  // so when blocks run out seq 1 preempts itself rather than seq 2.
  Sequence* in_flight = b[0].seq;
  for (int step = 0; step < 8; ++step) {
    auto c = s.schedule();
    for (const auto& x : c) EXPECT_FALSE(x.seq == in_flight);
    EXPECT_TRUE(in_flight->in_flight);
    EXPECT_EQ(in_flight->preemptions, 0);
    s.complete(c, sample_all(c));
  }
  EXPECT_GT(s.preemptions(), 0u);
  s.complete(b, sample_all(b));
  for (int step = 0; step < 100 && !s.idle(); ++step) {
    auto c = s.schedule();
    s.complete(c, sample_all(c));
  }
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(bm.free_blocks(), 5);
}

TEST(Scheduler, RandomMixWithPlansInFlightNeverLeaksBlocks) {
  std::mt19937 rng(777);
  for (int depth : {2, 3, 4}) {
    BlockManager bm(40, 4, true);
    Scheduler s({6, 24, 96, {3}, depth}, bm);
    std::uint64_t next_id = 1;
    std::vector<std::uint64_t> live;
    std::deque<std::vector<ScheduledChunk>> flight;
    for (int step = 0; step < 3000; ++step) {
      const int action = rng() % 10;
      if (action < 3) {
        auto seq = make_seq(next_id, 1 + rng() % 40, 1 + rng() % 30, (rng() % 3) * 1000);
        if (!s.add(std::move(seq))) live.push_back(next_id);
        ++next_id;
      } else if (action == 3 && !live.empty()) {
        s.abort(live[rng() % live.size()]);
      }
      if (static_cast<int>(flight.size()) < depth) {
        auto c = s.schedule();
        for (const auto& x : c) ASSERT_EQ(std::count_if(flight.begin(), flight.end(), [&](const auto& plan) {
                                            return std::any_of(plan.begin(), plan.end(),
                                                               [&](const auto& y) { return y.seq == x.seq; });
                                          }), 0) << "a sequence in two plans at once";
        if (!c.empty()) flight.push_back(std::move(c));
      }
      if (!flight.empty() && (static_cast<int>(flight.size()) == depth || rng() % 2)) {
        std::vector<int> sampled;
        for (std::size_t i = 0; i < flight.front().size(); ++i) sampled.push_back(rng() % 8);
        s.complete(flight.front(), sampled);
        flight.pop_front();
      }
      ASSERT_TRUE(bm.consistent()) << "depth " << depth << " step " << step;
    }
    while (!flight.empty()) {
      s.complete(flight.front(), std::vector<int>(flight.front().size(), 1));
      flight.pop_front();
    }
    for (std::uint64_t id : live) s.abort(id);
    EXPECT_TRUE(s.idle());
    EXPECT_EQ(bm.free_blocks(), 40) << "depth " << depth;
    EXPECT_EQ(bm.referenced_blocks(), 0);
    EXPECT_GT(s.preemptions(), 0u);
  }
}

}  // namespace
}  // namespace lockstep
