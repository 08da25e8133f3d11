// Token sampling on the last pipeline stage, with vLLM's semantics: temperature 0 is greedy;
// otherwise logits / temperature -> softmax -> min-p (drop p < min_p * p_max) -> top-k ->
// top-p (smallest set reaching top_p) -> renormalise -> draw. A request's seed makes its
// draws reproducible whatever else shares the batch.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace lockstep {

struct SamplingParams {
  float temperature = 1.0f;
  int top_k = -1;       // <= 0: off
  float top_p = 1.0f;   // 1: off
  float min_p = 0.0f;   // 0: off
  std::optional<std::uint64_t> seed;
  // vLLM's penalties: repetition over prompt and output tokens (logit / p if positive, * p if
  // negative), then frequency (minus f x count) and presence (minus p once) over output tokens.
  float repetition_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int logprobs = -1;  // -1: none; k >= 0: the sampled token's log-probability and the top k
  // -1: none; k >= 0: each prompt token's log-probability given the tokens before it, its rank
  // and the top k (vLLM's prompt_logprobs; completions' echo with logprobs). Such a prompt is
  // computed whole (no prefix-cache reuse): every position's logits are needed.
  int prompt_logprobs = -1;
  // OpenAI's logit_bias: (token id, bias in [-100, 100]) added to those logits before the
  // penalties (vLLM's order); log-probabilities stay those of the raw logits.
  std::vector<std::pair<int, float>> logit_bias;

  bool greedy() const { return temperature < 1e-5f; }  // vLLM's epsilon
  bool has_penalties() const {
    return repetition_penalty != 1.0f || frequency_penalty != 0.0f || presence_penalty != 0.0f;
  }
};

constexpr int kMaxLogprobs = 20;

// Log-probabilities of one step, from the raw logits (log-softmax before penalties, temperature
// and filtering: vLLM's default "raw_logprobs"). Fixed size so a step's rows travel as one block.
struct TokenLogprobs {
  float logprob = 0.0f;  // the sampled token's
  std::int32_t rank = 0;  // its rank in the distribution: 1 + the tokens of higher logit (vLLM's)
  std::int32_t num_top = 0;
  std::int32_t top_ids[kMaxLogprobs] = {};
  float top_logprobs[kMaxLogprobs] = {};
};

// In place, on a copy of a row's logits, before sampling.
void apply_penalties(float* logits, int vocab, const SamplingParams& params, std::span<const int> prompt,
                     std::span<const int> output);

// The sampled token's raw log-probability and the `top` most likely tokens (ties: lower id first).
TokenLogprobs token_logprobs(const float* logits, int vocab, int sampled, int top);

// A request's random stream: seeded when the request asks, else from the engine's seed.
class SamplerRng {
 public:
  explicit SamplerRng(std::uint64_t seed) : engine_(seed) {}
  double uniform();  // [0, 1), 53 random bits, the same on every platform

 private:
  std::mt19937_64 engine_;
};

// The id drawn from one row of logits. Greedy is an argmax (no softmax over the vocabulary: it runs for every row of every step);
// sampling without top-k/top-p/min-p draws in index order, without sorting. Log-probabilities
// for the API come from token_logprobs.
int sample_token(const float* logits, int vocab, const SamplingParams& params, SamplerRng& rng);
// The same with the row's uniform draw given (what rng.uniform() would return; greedy ignores it).
int sample_token(const float* logits, int vocab, const SamplingParams& params, double u);

// fn(begin, end) over [0, rows) cut among threads (one per 4 rows, at most the machine's cores;
// rows are independent, each with its own seed).
void for_rows_in_parallel(int rows, const std::function<void(int, int)>& fn);

}  // namespace lockstep
