// The "logprobs" field of a choice, in the endpoint's shape (what vLLM returns):
//   completions: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}, ...], "text_offset"}
//                (each top_logprobs entry holds the top k and the sampled token);
//   chat:        {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}.
// Token strings are single-token decodes (a lone byte of a multi-byte character decodes to U+FFFD).
#pragma once

#include <cstddef>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/openai/openai_request.h"
#include "model/sampler.h"

namespace lockstep {

class LogprobsOutput {
 public:
  LogprobsOutput(const OpenAIRequest& request, const Tokenizer* tokenizer) : request_(request), tokenizer_(tokenizer) {}

  // Tokens [from, to) of a choice; text_offset (completions) continues from earlier calls.
  nlohmann::ordered_json build(const std::vector<int>& ids, const std::vector<TokenLogprobs>& logprobs,
                               std::size_t from, std::size_t to);

 private:
  std::string token_text(int id) const;

  const OpenAIRequest& request_;
  const Tokenizer* tokenizer_;
  std::size_t text_offset_ = 0;
};

}  // namespace lockstep
