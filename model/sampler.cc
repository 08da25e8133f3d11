// sample_token (see sampler.h).
#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>
#include <vector>

#include "kernels/dense_ops.h"

namespace lockstep {

double SamplerRng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

int sample_token(const float* logits, int vocab, const SamplingParams& p, SamplerRng& rng) {
  return sample_token(logits, vocab, p, p.greedy() ? 0.0 : rng.uniform());
}

void for_rows_in_parallel(int rows, const std::function<void(int, int)>& fn) {
  const int threads = std::min<int>(rows / 4, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  if (threads <= 1) {
    fn(0, rows);
    return;
  }
  std::vector<std::thread> pool;
  const int per = (rows + threads - 1) / threads;
  for (int b = 0; b < rows; b += per) pool.emplace_back(fn, b, std::min(rows, b + per));
  for (std::thread& t : pool) t.join();
}

int sample_token(const float* logits, int vocab, const SamplingParams& p, double u) {
  const bool greedy = p.greedy();
  const float t = greedy ? 1.0f : p.temperature;
  float max_logit = -INFINITY;
  int best = 0;
  cpu::argmax(logits, 1, vocab, &best, 0, &max_logit);
  if (greedy) return best;
  const auto weight = [&](int i) { return static_cast<double>(std::exp((logits[i] - max_logit) / t)); };
  if (p.min_p <= 0.0f && p.top_k <= 0 && p.top_p >= 1.0f) {
    // The whole distribution: no order, and no table of probabilities either (a 1.2 MB double
    // array a row, written and read back, is memory traffic the sampling threads share): the walk
    // recomputes each weight, the same value the sum saw.
    double z = 0;
    for (int i = 0; i < vocab; ++i) z += weight(i);
    for (int i = 0; i < vocab; ++i)
      if ((u -= weight(i) / z) < 0) return i;
    return best;  // rounding left u >= 0
  }
  std::vector<double> prob(vocab);
  double z = 0;
  for (int i = 0; i < vocab; ++i) z += (prob[i] = weight(i));
  for (double& v : prob) v /= z;

  // The filters keep a prefix of the tokens ordered by probability (descending, lower id first
  // among equals: a stable sort's order), and the draw walks that prefix in the same order. Both
  // only need the point where the prefix's mass crosses a target, which a selection finds
  // without sorting: a full sort of a 152k vocabulary took ~28 ms a row, partial sorts grown
  // geometrically up to 90 ms on a flat distribution (temperature 0.6, top_p 0.95 keeps most of
  // it), and at batch 256 either cost more than a GPU step.
  std::vector<int> order;
  if (p.min_p > 0.0f) {  // min-p keeps exactly the tokens at or above the cut: a prefix
    const double cut = p.min_p * prob[best];
    for (int i = 0; i < vocab; ++i)
      if (prob[i] >= cut) order.push_back(i);
    if (order.empty()) return best;  // only when the probabilities are NaN (min_p <= 1 keeps the best)
  } else {
    order.resize(vocab);
    std::iota(order.begin(), order.end(), 0);
  }
  const auto before = [&](int a, int b) { return prob[a] > prob[b] || (prob[a] == prob[b] && a < b); };
  const auto at = [&](std::size_t i) { return order.begin() + static_cast<std::ptrdiff_t>(i); };
  // The smallest n <= count such that the n first of order[0, count) in that order weigh at
  // least `target` (more than it when `strict`), leaving them in order[0, n) with the n-th last;
  // count when rounding never gets there. First the best 256 sorted (a peaked distribution ends
  // there), then halving selections over the rest: O(count) expected.
  const auto first_reaching = [&](std::size_t count, double target, bool strict) {
    const auto reached = [&](double mass) { return strict ? mass > target : mass >= target; };
    double base = 0;  // the mass of order[0, lo), all ahead of order[lo, hi)
    std::size_t lo = 0, hi = count;
    const std::size_t head = std::min<std::size_t>(count, 256);
    std::partial_sort(order.begin(), at(head), at(count), before);
    for (; lo < head; ++lo)
      if (reached(base += prob[order[lo]])) return lo + 1;
    while (hi - lo > 64) {
      const std::size_t mid = lo + (hi - lo) / 2;
      std::nth_element(at(lo), at(mid), at(hi), before);
      double mass = 0;
      for (std::size_t i = lo; i < mid; ++i) mass += prob[order[i]];
      if (reached(base + mass)) {
        hi = mid;
      } else {
        base += mass;
        lo = mid;
      }
    }
    std::sort(at(lo), at(hi), before);
    for (; lo < hi; ++lo)
      if (reached(base += prob[order[lo]])) return lo + 1;
    return count;
  };
  std::size_t keep = order.size();
  if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < keep) {
    keep = p.top_k;
    // The top k: sorted when few (a heap of k mostly rejects at a glance: 1.2 ms a 152k row at
    // k = 50, where a selection took 2.5), else selected in no order.
    if (keep <= 1024) std::partial_sort(order.begin(), at(keep), order.end(), before);
    else std::nth_element(order.begin(), at(keep), order.end(), before);
  }
  if (p.top_p < 1.0f) {
    double total = 0;  // the kept tokens' mass (in id order when they are all of `order`)
    for (std::size_t i = 0; i < keep; ++i) total += prob[order[i]];
    keep = std::max<std::size_t>(1, first_reaching(keep, p.top_p * total, false));
  }
  keep = std::max<std::size_t>(1, keep);
  double mass = 0;
  for (std::size_t i = 0; i < keep; ++i) mass += prob[order[i]];
  const std::size_t drawn = first_reaching(keep, u * mass, true);
  return order[drawn - 1];
}

void apply_penalties(float* logits, int vocab, const SamplingParams& p, std::span<const int> prompt,
                     std::span<const int> output) {
  if (p.repetition_penalty != 1.0f) {
    std::vector<char> seen(vocab, 0);
    for (int t : prompt)
      if (t >= 0 && t < vocab) seen[t] = 1;
    for (int t : output)
      if (t >= 0 && t < vocab) seen[t] = 1;
    for (int i = 0; i < vocab; ++i)
      if (seen[i]) logits[i] = logits[i] > 0 ? logits[i] / p.repetition_penalty : logits[i] * p.repetition_penalty;
  }
  if (p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    std::vector<int> count(vocab, 0);
    for (int t : output)
      if (t >= 0 && t < vocab) ++count[t];
    for (int i = 0; i < vocab; ++i)
      if (count[i]) logits[i] -= p.frequency_penalty * count[i] + p.presence_penalty;
  }
}

TokenLogprobs token_logprobs(const float* logits, int vocab, int sampled, int top) {
  double max_logit = -INFINITY;
  for (int i = 0; i < vocab; ++i) max_logit = std::max<double>(max_logit, logits[i]);
  double z = 0;
  for (int i = 0; i < vocab; ++i) z += std::exp(logits[i] - max_logit);
  const double log_z = max_logit + std::log(z);
  TokenLogprobs out;
  out.logprob = static_cast<float>(logits[sampled] - log_z);
  out.rank = 1 + static_cast<std::int32_t>(std::count_if(logits, logits + vocab, [&](float v) { return v > logits[sampled]; }));
  out.num_top = std::clamp(top, 0, std::min(kMaxLogprobs, vocab));
  std::vector<int> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + out.num_top, order.end(),
                    [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (int k = 0; k < out.num_top; ++k) {
    out.top_ids[k] = order[k];
    out.top_logprobs[k] = static_cast<float>(logits[order[k]] - log_z);
  }
  return out;
}

}  // namespace lockstep
