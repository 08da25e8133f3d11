// Sampling: greedy, temperature, top-k, top-p, min-p, seeded reproducibility, and draws that
// follow the softmax they should.
#include "model/sampler.h"

#include <gtest/gtest.h>

#include "kernels/sampling.h"
#include "model/forward_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

namespace lockstep {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};

std::vector<double> frequencies(const SamplingParams& p, int draws, std::uint64_t seed = 7) {
  SamplerRng rng(seed);
  std::vector<double> f(kLogits.size(), 0.0);
  for (int i = 0; i < draws; ++i) f[sample_token(kLogits.data(), kLogits.size(), p, rng)] += 1.0 / draws;
  return f;
}

TEST(Sampler, GreedyPicksArgmax) {
  SamplerRng rng(1);
  SamplingParams p;
  p.temperature = 0.0f;
  EXPECT_EQ(sample_token(kLogits.data(), kLogits.size(), p, rng), 1);
}

TEST(Sampler, FollowsTheSoftmax) {
  SamplingParams p;
  p.temperature = 0.7f;
  const auto f = frequencies(p, 200000);
  double z = 0;
  for (float l : kLogits) z += std::exp(l / 0.7);
  for (std::size_t i = 0; i < kLogits.size(); ++i) EXPECT_NEAR(f[i], std::exp(kLogits[i] / 0.7) / z, 0.005) << i;
}

TEST(Sampler, TopKTopPMinPFilter) {
  SamplingParams k1;
  k1.top_k = 1;
  EXPECT_DOUBLE_EQ(frequencies(k1, 1000)[1], 1.0);
  SamplingParams k2;
  k2.top_k = 2;  // only tokens 1 and 4
  const auto f2 = frequencies(k2, 20000);
  EXPECT_NEAR(f2[1] + f2[4], 1.0, 1e-9);
  EXPECT_NEAR(f2[1], 1.0 / (1.0 + std::exp(-0.1)), 0.01);
  SamplingParams tp;
  tp.top_p = 0.3f;  // token 1 alone holds ~35%: nothing else is needed
  EXPECT_DOUBLE_EQ(frequencies(tp, 1000)[1], 1.0);
  SamplingParams mp;
  mp.min_p = 0.5f;  // keeps p >= 0.5 * p_max: tokens 1 and 4 (token 2 has e^-1 = 0.37 of p_max)
  const auto fm = frequencies(mp, 20000);
  EXPECT_NEAR(fm[1] + fm[4], 1.0, 1e-9);
}

// The filters as first written: the whole vocabulary stable-sorted by probability. sample_token
// sorts only the best 256 and finds the filters' and the draw's cut points by selection (flat
// distributions, spread 0.5, put them deep past those 256); it must draw the very same tokens.
int sample_by_full_sort(const std::vector<float>& logits, const SamplingParams& p, SamplerRng& rng) {
  const int vocab = static_cast<int>(logits.size());
  const float max_logit = *std::max_element(logits.begin(), logits.end()), t = p.temperature;
  std::vector<double> prob(vocab);
  double z = 0;
  for (int i = 0; i < vocab; ++i) z += (prob[i] = std::exp((logits[i] - max_logit) / t));  // float exp, as there
  for (double& v : prob) v /= z;
  std::vector<int> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return prob[a] > prob[b]; });
  std::size_t keep = order.size();
  if (p.min_p > 0.0f)
    keep = std::find_if(order.begin(), order.end(), [&](int i) { return prob[i] < p.min_p * prob[order[0]]; }) -
           order.begin();
  if (p.top_k > 0) keep = std::min<std::size_t>(keep, p.top_k);
  if (p.top_p < 1.0f) {
    double total = 0, cum = 0;
    for (std::size_t i = 0; i < keep; ++i) total += prob[order[i]];
    std::size_t n = 0;
    while (n < keep) {
      cum += prob[order[n++]];
      if (cum >= p.top_p * total) break;
    }
    keep = std::max<std::size_t>(1, n);
  }
  keep = std::max<std::size_t>(1, keep);
  double mass = 0;
  for (std::size_t i = 0; i < keep; ++i) mass += prob[order[i]];
  double u = rng.uniform() * mass;
  for (std::size_t i = 0; i < keep; ++i)
    if ((u -= prob[order[i]]) < 0) return order[i];
  return order[keep - 1];
}

TEST(Sampler, SelectionDrawsWhatAFullSortDraws) {
  std::mt19937 gen(20261202);
  int checked = 0;
  for (const int vocab : {7, 300, 5000, 20000})
    for (const float spread : {0.5f, 3.0f, 12.0f})  // flat to peaked
      for (int trial = 0; trial < 4; ++trial) {
        std::normal_distribution<float> normal(0.0f, spread);
        std::vector<float> logits(vocab);
        for (float& l : logits) l = normal(gen);
        // Ties: a run of equal logits, so the order among equals (lower id first) matters.
        for (int i = 0; i < std::min(vocab, 40); i += 2) logits[i] = logits[0];
        for (const auto& [top_k, top_p, min_p] : {std::tuple{-1, 0.9f, 0.0f}, std::tuple{50, 1.0f, 0.0f},
                                                  std::tuple{-1, 1.0f, 0.05f}, std::tuple{20, 0.8f, 0.0f},
                                                  std::tuple{-1, 0.95f, 0.01f}, std::tuple{3000, 0.99f, 0.2f},
                                                  std::tuple{1, 1.0f, 0.0f}, std::tuple{-1, 0.001f, 0.0f}}) {
          SamplingParams p;
          p.temperature = 0.6f + 0.2f * trial;
          p.top_k = top_k, p.top_p = top_p, p.min_p = min_p;
          for (std::uint64_t seed = 0; seed < 5; ++seed) {
            SamplerRng a(seed), b(seed);
            ASSERT_EQ(sample_token(logits.data(), vocab, p, a), sample_by_full_sort(logits, p, b))
                << "vocab " << vocab << " spread " << spread << " top_k " << top_k << " top_p " << top_p
                << " min_p " << min_p << " seed " << seed;
            ++checked;
          }
        }
      }
  EXPECT_EQ(checked, 4 * 3 * 4 * 8 * 5);
}

// The rule the GPU samples by (kernels/sampling.h: integer masses, exp in double) against this
// sampler, the same uniform draw given to both: they may part only where rounding moves a cut
// point past the draw (masses differ by ~2^-45 of the best's weight), which these cases all but
// never meet. Greedy, the unfiltered draw (id order) and every filter, ties, masked (-inf)
// logits, flat to peaked rows, vocabularies 7 to 152064.
TEST(Sampler, DeviceSamplingRuleDrawsWhatTheSamplerDraws) {
  std::mt19937 gen(20261202);
  int checked = 0, parted = 0;
  for (const int vocab : {7, 300, 5000, 152064})
    for (const float spread : {0.5f, 3.0f, 12.0f})
      for (int trial = 0; trial < (vocab > 100000 ? 1 : 3); ++trial) {
        std::normal_distribution<float> normal(0.0f, spread);
        std::vector<float> logits(vocab);
        for (float& l : logits) l = normal(gen);
        for (int i = 0; i < std::min(vocab, 40); i += 2) logits[i] = logits[0];  // ties
        logits[vocab / 2] = -INFINITY;                                            // a masked token
        for (const auto& [t, top_k, top_p, min_p] :
             {std::tuple{0.0f, -1, 1.0f, 0.0f}, std::tuple{1.0f, -1, 1.0f, 0.0f}, std::tuple{0.6f, -1, 0.95f, 0.0f},
              std::tuple{0.6f, 50, 1.0f, 0.0f}, std::tuple{1.3f, -1, 1.0f, 0.05f}, std::tuple{0.8f, 20, 0.8f, 0.0f},
              std::tuple{0.7f, 3000, 0.99f, 0.2f}, std::tuple{1.0f, 1, 1.0f, 0.0f}, std::tuple{1.0f, -1, 0.001f, 0.0f},
              std::tuple{1.0f, -1, 1.0f, 2.0f}}) {
          SamplingParams p;
          p.temperature = t, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p;
          for (std::uint64_t seed = 0; seed < 4; ++seed) {
            SamplerRng a(seed), b(seed);
            const RowSampling rs{t, top_k, top_p, min_p, b.uniform()};
            int device_rule = -1;
            cpu::sample_rows(logits.data(), 1, vocab, &rs, &device_rule);
            const int sampler = sample_token(logits.data(), vocab, p, a);
            parted += device_rule != sampler;
            EXPECT_TRUE(device_rule >= 0 && device_rule < vocab && logits[device_rule] > -INFINITY) << device_rule;
            ++checked;
          }
        }
      }
  EXPECT_EQ(checked, (3 * 3 * 3 + 3) * 10 * 4);
  EXPECT_LE(parted, checked / 1000) << parted << " of " << checked << " draws differ";
}

// A stage whose logits are given: what ForwardModel::forward_sample draws on the host.
class GivenLogits : public ForwardModel {
 public:
  GivenLogits(std::vector<float> logits, int vocab) : logits_(std::move(logits)) { config_.vocab_size = vocab; }
  std::span<const float> forward(const ForwardBatch&) override { return logits_; }
  const ModelConfig& config() const override { return config_; }
  int block_size() const override { return 16; }
  int num_kv_blocks() const override { return 0; }

 private:
  std::vector<float> logits_;
  ModelConfig config_;
};

// The engine hands forward_sample each row's uniform as SamplerRng(seed).uniform(): the host
// path must then draw what sample_token draws from that seed, greedy and filtered rows alike,
// over enough rows to take several threads.
TEST(Sampler, ForwardSampleDrawsWhatTheSeedsDraw) {
  const int vocab = 500, rows = 64;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(static_cast<std::size_t>(rows) * vocab);
  for (float& l : logits) l = normal(gen);
  std::vector<RowSampling> draws(rows);
  std::vector<int> want(rows);
  for (int r = 0; r < rows; ++r) {
    SamplingParams p;
    p.temperature = r % 5 == 0 ? 0.0f : 0.5f + 0.1f * (r % 7);
    p.top_k = r % 3 == 0 ? 20 : -1;
    p.top_p = r % 4 == 0 ? 0.9f : 1.0f;
    p.min_p = r % 6 == 1 ? 0.05f : 0.0f;
    const std::uint64_t seed = 1000 + r;
    SamplerRng rng(seed);
    want[r] = sample_token(&logits[static_cast<std::size_t>(r) * vocab], vocab, p, rng);
    draws[r] = {p.temperature, p.top_k, p.top_p, p.min_p, p.greedy() ? 0.0 : SamplerRng(seed).uniform()};
  }
  GivenLogits model(logits, vocab);
  EXPECT_EQ(model.forward_sample(ForwardBatch{}, draws), want);
}

TEST(Sampler, SeededDrawsRepeat) {
  SamplingParams p;
  EXPECT_EQ(frequencies(p, 500, 42), frequencies(p, 500, 42));
  EXPECT_NE(frequencies(p, 500, 42), frequencies(p, 500, 43));
}

// vLLM's penalties, written out by hand for a 6-token vocabulary.
TEST(Sampler, PenaltiesFollowVllm) {
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
  const std::vector<int> prompt = {0, 1};
  const std::vector<int> output = {3, 3, 4};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  std::vector<float> l = logits;
  apply_penalties(l.data(), 6, p, prompt, output);
  EXPECT_EQ(l, (std::vector<float>{1.0f, -2.0f, 0.5f, 1.5f, -4.0f, 1.0f}));  // prompt and output tokens
  p = SamplingParams{};
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  l = logits;
  apply_penalties(l.data(), 6, p, prompt, output);
  // Output tokens only: 3 twice (-0.5*2 - 0.25), 4 once (-0.5 - 0.25); prompt tokens untouched.
  EXPECT_EQ(l, (std::vector<float>{2.0f, -1.0f, 0.5f, 1.75f, -2.75f, 1.0f}));
  EXPECT_FALSE(SamplingParams{}.has_penalties());
}

TEST(Sampler, RawLogprobsAndTopK) {
  const TokenLogprobs lp = token_logprobs(kLogits.data(), kLogits.size(), 2, 3);
  double z = 0;
  for (float v : kLogits) z += std::exp(v);
  EXPECT_NEAR(lp.logprob, 2.0 - std::log(z), 1e-5);
  ASSERT_EQ(lp.num_top, 3);
  EXPECT_EQ((std::vector<int>{lp.top_ids[0], lp.top_ids[1], lp.top_ids[2]}), (std::vector<int>{1, 4, 2}));
  EXPECT_NEAR(lp.top_logprobs[0], 3.0 - std::log(z), 1e-5);
  EXPECT_EQ(lp.rank, 3);  // ids 1 and 4 have larger logits (vLLM's rank: 1 + those above)
  EXPECT_EQ(token_logprobs(kLogits.data(), kLogits.size(), 1, 0).rank, 1);
  EXPECT_EQ(token_logprobs(kLogits.data(), kLogits.size(), 0, 50).num_top, 5);  // capped by the vocabulary
  EXPECT_EQ(token_logprobs(kLogits.data(), kLogits.size(), 0, 0).num_top, 0);
}

}  // namespace
}  // namespace lockstep
