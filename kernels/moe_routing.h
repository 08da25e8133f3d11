// DeepSeek-V3's expert choice (transformers' DeepseekV3TopkRouter, "noaux_tc"): sigmoid scores of
// the router's logits; the correction bias added to choose (never to weigh); experts in groups,
// each group scored by its two best biased scores, the best top_groups groups kept; the top_k
// experts of the kept groups by biased score;
// their unbiased scores as weights, normalized to sum 1 (normalize) and times `scaling`.
#pragma once

#include <cstdint>

namespace lockstep::cpu {

struct ExpertRouting {
  int experts = 0, groups = 1, top_groups = 1, top_k = 1;
  bool normalize = true;
  float scaling = 1.0f;
};

// logits [tokens, experts] (fp32, as transformers computes them), bias [experts]; writes
// expert_ids and weights [tokens, top_k], best first (ties: the lower index).
void route_experts(const float* logits, std::int64_t tokens, const float* bias, const ExpertRouting& r, int* expert_ids,
                   float* weights);

}  // namespace lockstep::cpu
