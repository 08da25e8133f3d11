// route_experts (see kernels/moe_routing.h).
#include "kernels/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace lockstep::cpu {

namespace {
// Indices of the k largest values, best first, the lower index first on ties.
std::vector<int> top_indices(const std::vector<float>& v, int k) {
  std::vector<int> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int a, int b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  idx.resize(k);
  return idx;
}
}  // namespace

void route_experts(const float* logits, std::int64_t tokens, const float* bias, const ExpertRouting& r, int* expert_ids,
                   float* weights) {
  const int E = r.experts, per_group = r.experts / r.groups;
  std::vector<float> score(E), choice(E), group_score(r.groups);
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (int e = 0; e < E; ++e) {
      score[e] = 1.0f / (1.0f + std::exp(-logits[t * E + e]));
      choice[e] = score[e] + bias[e];
    }
    for (int g = 0; g < r.groups; ++g) {
      std::vector<float> in_group(choice.begin() + g * per_group, choice.begin() + (g + 1) * per_group);
      const std::vector<int> best = top_indices(in_group, 2);
      group_score[g] = in_group[best[0]] + in_group[best[1]];
    }
    std::vector<bool> kept(r.groups, false);
    for (int g : top_indices(group_score, r.top_groups)) kept[g] = true;
    for (int e = 0; e < E; ++e)
      if (!kept[e / per_group]) choice[e] = -INFINITY;
    const std::vector<int> chosen = top_indices(choice, r.top_k);
    float sum = 0.0f;
    for (int i = 0; i < r.top_k; ++i) sum += score[chosen[i]];
    for (int i = 0; i < r.top_k; ++i) {
      float w = score[chosen[i]];
      if (r.normalize) w /= sum + 1e-20f;
      expert_ids[t * r.top_k + i] = chosen[i];
      weights[t * r.top_k + i] = w * r.scaling;
    }
  }
}

}  // namespace lockstep::cpu
