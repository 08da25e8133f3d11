// Sampling: greedy, temperature, top-k, top-p, min-p, seeded reproducibility, and draws that
// follow the softmax they should.
#include "model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace lockstep {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};

std::vector<double> frequencies(const SamplingParams& p, int draws, std::uint64_t seed = 7) {
  SamplerRng rng(seed);
  std::vector<double> f(kLogits.size(), 0.0);
  for (int i = 0; i < draws; ++i) f[sample_token(kLogits.data(), kLogits.size(), p, rng).id] += 1.0 / draws;
  return f;
}

TEST(Sampler, GreedyPicksArgmaxWithLogprob) {
  SamplerRng rng(1);
  SamplingParams p;
  p.temperature = 0.0f;
  const SampledToken t = sample_token(kLogits.data(), kLogits.size(), p, rng);
  EXPECT_EQ(t.id, 1);
  double z = 0;
  for (float l : kLogits) z += std::exp(l - 3.0);
  EXPECT_NEAR(t.logprob, -std::log(z), 1e-6);
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

TEST(Sampler, SeededDrawsRepeat) {
  SamplingParams p;
  EXPECT_EQ(frequencies(p, 500, 42), frequencies(p, 500, 42));
  EXPECT_NE(frequencies(p, 500, 42), frequencies(p, 500, 43));
}

}  // namespace
}  // namespace lockstep
