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
  // Completions with echo: the prompt's tokens in the same shape, the first one's log-probability
  // and top entries null (nothing precedes it); text_offset starts at 0, and build() continues it.
  nlohmann::ordered_json build_prompt(const std::vector<int>& prompt, const std::vector<TokenLogprobs>& logprobs);
  // echo's prompt part followed by a build() part, array by array.
  static nlohmann::ordered_json concat(nlohmann::ordered_json prompt_part, const nlohmann::ordered_json& generated);
  // vLLM's "prompt_logprobs": [null, {"<id>": {"logprob", "rank", "decoded_token"}, ...}, ...],
  // each entry the prompt token and the top k.
  nlohmann::ordered_json prompt_logprobs_field(const std::vector<int>& prompt,
                                               const std::vector<TokenLogprobs>& logprobs) const;

 private:
  std::string token_text(int id) const;
  void add_completion_token(nlohmann::ordered_json& out, int id, const TokenLogprobs* lp);

  const OpenAIRequest& request_;
  const Tokenizer* tokenizer_;
  std::size_t text_offset_ = 0;
};

}  // namespace lockstep
