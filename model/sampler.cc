// sample_token (see sampler.h).
#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace lockstep {

double SamplerRng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

SampledToken sample_token(const float* logits, int vocab, const SamplingParams& p, SamplerRng& rng) {
  const bool greedy = p.temperature < 1e-5f;
  const float t = greedy ? 1.0f : p.temperature;
  float max_logit = -INFINITY;
  int best = 0;
  for (int i = 0; i < vocab; ++i)
    if (logits[i] > max_logit) { max_logit = logits[i]; best = i; }
  std::vector<double> prob(vocab);
  double z = 0;
  for (int i = 0; i < vocab; ++i) z += (prob[i] = std::exp((logits[i] - max_logit) / t));
  for (double& v : prob) v /= z;
  auto logprob = [&](int id) { return static_cast<float>(std::log(std::max(prob[id], 1e-300))); };
  if (greedy) return {best, logprob(best)};

  std::vector<int> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return prob[a] > prob[b]; });
  std::size_t keep = order.size();
  if (p.min_p > 0.0f) {
    const double cut = p.min_p * prob[order[0]];
    keep = std::find_if(order.begin(), order.end(), [&](int i) { return prob[i] < cut; }) - order.begin();
  }
  if (p.top_k > 0) keep = std::min<std::size_t>(keep, p.top_k);
  if (p.top_p < 1.0f) {
    double total = 0;
    for (std::size_t i = 0; i < keep; ++i) total += prob[order[i]];
    double cum = 0;
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
  for (std::size_t i = 0; i < keep; ++i) {
    u -= prob[order[i]];
    if (u < 0) return {order[i], logprob(order[i])};
  }
  return {order[keep - 1], logprob(order[keep - 1])};
}

}  // namespace lockstep
