// Token sampling on the last pipeline stage, with vLLM's semantics: temperature 0 is greedy;
// otherwise logits / temperature -> softmax -> min-p (drop p < min_p * p_max) -> top-k ->
// top-p (smallest set reaching top_p) -> renormalise -> draw. A request's seed makes its
// draws reproducible whatever else shares the batch.
#pragma once

#include <cstdint>
#include <optional>
#include <random>

namespace lockstep {

struct SamplingParams {
  float temperature = 1.0f;
  int top_k = -1;       // <= 0: off
  float top_p = 1.0f;   // 1: off
  float min_p = 0.0f;   // 0: off
  std::optional<std::uint64_t> seed;
};

// A request's random stream: seeded when the request asks, else from the engine's seed.
class SamplerRng {
 public:
  explicit SamplerRng(std::uint64_t seed) : engine_(seed) {}
  double uniform();  // [0, 1), 53 random bits, the same on every platform

 private:
  std::mt19937_64 engine_;
};

struct SampledToken {
  int id = 0;
  float logprob = 0.0f;  // log-probability under the unfiltered, temperature-scaled distribution
};

SampledToken sample_token(const float* logits, int vocab, const SamplingParams& params, SamplerRng& rng);

}  // namespace lockstep
