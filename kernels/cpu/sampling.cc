// cpu::sample_rows (see kernels/sampling.h): the plain statement of the rule, a stable sort and
// running integer masses, which the GPU's radix selections must reproduce token for token.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/dense_ops.h"
#include "kernels/sampling.h"

namespace lockstep::cpu {
namespace {

// exp in double rounded to float (the GPU's exp agrees to the last bit but in ~2^-29 of cases);
// NaN (from NaN logits) weighs nothing.
float weight(float logit, float max_logit, float t) {
  const auto w = static_cast<float>(std::exp(static_cast<double>((logit - max_logit) / t)));
  return std::isnan(w) ? 0.0f : w;
}
std::uint64_t mass_of(float w) { return static_cast<std::uint64_t>(w * 0x1p45f); }

// The first of ids[0, count) (in that order) whose running mass reaches target; `none` when
// rounding left the target out of reach.
int first_reaching(const std::vector<int>& ids, std::size_t count, const std::vector<float>& w, std::uint64_t target,
                   int none) {
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < count; ++i)
    if ((cum += mass_of(w[ids[i]])) >= target) return ids[i];
  return none;
}

// The draw's target: the first running mass above u times the mass.
std::uint64_t draw_target(double u, std::uint64_t mass) {
  return static_cast<std::uint64_t>(std::floor(u * static_cast<double>(mass))) + 1;
}

int sample_row(const float* logits, std::int64_t vocab, const RowSampling& p) {
  int best = 0;
  float max_logit = -INFINITY;
  argmax(logits, 1, vocab, &best, 0, &max_logit);
  if (p.temperature < 1e-5f) return best;
  std::vector<float> w(vocab);
  for (std::int64_t i = 0; i < vocab; ++i) w[i] = weight(logits[i], max_logit, p.temperature);
  std::vector<int> order;
  if (p.min_p <= 0.0f && p.top_k <= 0 && p.top_p >= 1.0f) {  // in id order
    order.resize(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::uint64_t total = 0;
    for (float v : w) total += mass_of(v);
    return first_reaching(order, order.size(), w, draw_target(p.u, total), best);
  }
  for (std::int64_t i = 0; i < vocab; ++i)
    if (p.min_p <= 0.0f || w[i] >= p.min_p) order.push_back(static_cast<int>(i));
  if (order.empty()) return best;  // min_p > 1
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return w[a] > w[b]; });  // ties: lower id first
  std::size_t keep = order.size();
  if (p.top_k > 0) keep = std::min<std::size_t>(keep, p.top_k);
  if (p.top_p < 1.0f) {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < keep; ++i) total += mass_of(w[order[i]]);
    const auto target = static_cast<std::uint64_t>(std::ceil(static_cast<double>(p.top_p) * static_cast<double>(total)));
    std::uint64_t cum = 0;
    std::size_t n = 0;
    while (n < keep && (cum += mass_of(w[order[n++]])) < target) {
    }
    keep = std::max<std::size_t>(1, n);
  }
  std::uint64_t mass = 0;
  for (std::size_t i = 0; i < keep; ++i) mass += mass_of(w[order[i]]);
  return first_reaching(order, keep, w, draw_target(p.u, mass), order[keep - 1]);
}

}  // namespace

void sample_rows(const float* logits, std::int64_t rows, std::int64_t vocab, const RowSampling* params, int* ids) {
  for (std::int64_t r = 0; r < rows; ++r) ids[r] = sample_row(logits + r * vocab, vocab, params[r]);
}

}  // namespace lockstep::cpu
