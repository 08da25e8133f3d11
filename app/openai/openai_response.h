// Response bodies in the OpenAI shape (what vLLM returns): text_completion and
// chat.completion objects with choices, finish and stop reasons, usage, and — with
// return_token_ids — each choice's token_ids and prompt_token_ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/openai/choice_output.h"

namespace lockstep {

struct ChoiceResult {
  const ChoiceOutput* output = nullptr;
  int prompt_index = 0;
};

// A fresh id with the endpoint's prefix ("cmpl-", "chatcmpl-").
std::string new_response_id(Endpoint endpoint);

nlohmann::ordered_json usage_json(std::size_t prompt_tokens, std::size_t completion_tokens);
std::size_t prompt_token_count(const OpenAIRequest& request);

// A streamed chunk ("text_completion" or "chat.completion.chunk") around `choices`; the SSE
// event is "data: " + dump + "\n\n".
nlohmann::ordered_json stream_chunk(const OpenAIRequest& request, const ModelContext& model, const std::string& id,
                                    std::int64_t created, nlohmann::ordered_json choices);

nlohmann::ordered_json build_response(const OpenAIRequest& request, const ModelContext& model, const std::string& id,
                                      std::int64_t created, const std::vector<ChoiceResult>& choices);

}  // namespace lockstep
