// One request's sequence as the scheduler tracks it: prompt + generated tokens, how many of
// them are in the KV cache, its blocks, its sampling and stopping rules, and why it ended.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "app/engine/block_manager.h"
#include "model/sampler.h"

namespace lockstep {

enum class FinishReason { None, Stop, Length, Abort };

constexpr std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::None: return "";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Abort: return "abort";
  }
  return "";
}

struct StopRules {
  int max_tokens = 16;
  std::vector<int> stop_token_ids;  // besides the model's EOS
  bool ignore_eos = false;
  int min_tokens = 0;
};

struct Sequence {
  std::uint64_t id = 0;
  std::vector<int> tokens;     // prompt, then generated
  int prompt_len = 0;
  int num_computed = 0;        // tokens whose K/V are in the cache
  std::vector<int> blocks;     // KV blocks, in order
  BlockManager::Registered registered;  // full blocks already hashed for prefix caching
  SamplingParams sampling;
  StopRules stop;
  FinishReason finish = FinishReason::None;
  int preemptions = 0;
  bool in_flight = false;        // in a plan the pipeline is still computing
  bool abort_requested = false;  // aborted while in flight: removed when its plan completes
  // With sampling.prompt_logprobs: entry t (1 <= t < prompt_len) is prompt token t's, filled as
  // the prompt's chunks compute (again after a preemption: the same values); handed out with the
  // first generated token.
  std::vector<TokenLogprobs> prompt_logprobs;
  bool prompt_logprobs_sent = false;

  // Logit rows a chunk [start, start + count) of this sequence scores besides its sampled one:
  // the prompt positions whose next token is a prompt token.
  int prompt_rows(int start, int count) const {
    if (sampling.prompt_logprobs < 0) return 0;
    return std::max(0, std::min(start + count, prompt_len - 1) - start);
  }

  int generated() const { return static_cast<int>(tokens.size()) - prompt_len; }
  int remaining() const { return static_cast<int>(tokens.size()) - num_computed; }
};

}  // namespace lockstep
