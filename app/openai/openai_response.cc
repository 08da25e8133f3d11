// Response bodies (see openai_response.h).
#include "app/openai/openai_response.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

#include "app/openai/logprobs_output.h"
#include "app/openai/reasoning_parser.h"

namespace lockstep {

std::string new_response_id(Endpoint endpoint) {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t salt = std::random_device{}();
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%016llx%04llx", endpoint == Endpoint::Completions ? "cmpl-" : "chatcmpl-",
                static_cast<unsigned long long>(salt), static_cast<unsigned long long>(counter++ & 0xffff));
  return buf;
}

nlohmann::ordered_json usage_json(std::size_t prompt_tokens, std::size_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"total_tokens", prompt_tokens + completion_tokens},
          {"completion_tokens", completion_tokens}};
}

std::size_t prompt_token_count(const OpenAIRequest& r) {
  std::size_t n = 0;
  for (const auto& p : r.prompts) n += p.size();
  return n;
}

nlohmann::ordered_json stream_chunk(const OpenAIRequest& r, const ModelContext& m, const std::string& id,
                                    std::int64_t created, nlohmann::ordered_json choices) {
  nlohmann::ordered_json out;
  out["id"] = id;
  out["object"] = r.endpoint == Endpoint::ChatCompletions ? "chat.completion.chunk" : "text_completion";
  out["created"] = created;
  out["model"] = m.served_model_name;
  out["choices"] = std::move(choices);
  if (r.include_usage) out["usage"] = nullptr;  // OpenAI: null on every chunk but the last
  return out;
}

nlohmann::ordered_json build_response(const OpenAIRequest& r, const ModelContext& m, const std::string& id,
                                      std::int64_t created, const std::vector<ChoiceResult>& choices) {
  using json = nlohmann::ordered_json;
  const bool chat = r.endpoint == Endpoint::ChatCompletions;
  json out;
  out["id"] = id;
  out["object"] = chat ? "chat.completion" : "text_completion";
  out["created"] = created;
  out["model"] = m.served_model_name;
  json list = json::array();
  std::size_t completion_tokens = 0;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    const ChoiceOutput& c = *choices[i].output;
    completion_tokens += c.token_ids().size();
    json choice;
    choice["index"] = i;
    if (chat) {
      json message;
      message["role"] = "assistant";
      if (m.reasoning_parser) {
        const auto [reasoning, content] = split_reasoning(c.text());
        message["content"] = content ? json(*content) : json(nullptr);
        // Both names: `reasoning` is vLLM's since late 2025 (OpenAI's guidance for chains of
        // thought), `reasoning_content` DeepSeek's own API's and the clients built on it.
        message["reasoning"] = reasoning ? json(*reasoning) : json(nullptr);
        message["reasoning_content"] = message["reasoning"];
      } else {
        message["content"] = c.text();
      }
      message["tool_calls"] = json::array();
      choice["message"] = message;
    } else {
      choice["text"] = r.echo_texts.empty() ? c.text() : r.echo_texts[choices[i].prompt_index] + c.text();
    }
    const std::vector<int>& prompt = r.prompts[choices[i].prompt_index];
    if (r.generation.sampling.logprobs >= 0) {
      LogprobsOutput lo(r, m.tokenizer.get());
      if (!r.echo_texts.empty()) {  // echo: the prompt's tokens first
        json prompt_part = lo.build_prompt(prompt, c.prompt_logprobs());
        choice["logprobs"] = LogprobsOutput::concat(std::move(prompt_part), lo.build(c.token_ids(), c.logprobs(), 0, c.token_ids().size()));
      } else {
        choice["logprobs"] = lo.build(c.token_ids(), c.logprobs(), 0, c.token_ids().size());
      }
    } else {
      choice["logprobs"] = nullptr;
    }
    choice["finish_reason"] = c.finish_reason();
    choice["stop_reason"] = c.stop_reason();
    if (r.prompt_logprobs_field && !chat)
      choice["prompt_logprobs"] = LogprobsOutput(r, m.tokenizer.get()).prompt_logprobs_field(prompt, c.prompt_logprobs());
    if (r.return_token_ids) {
      choice["token_ids"] = c.token_ids();
      choice["prompt_token_ids"] = r.prompts[choices[i].prompt_index];
    }
    list.push_back(std::move(choice));
  }
  out["choices"] = std::move(list);
  if (r.prompt_logprobs_field && chat && !choices.empty())  // vLLM: the chat prompt's, once per response
    out["prompt_logprobs"] =
        LogprobsOutput(r, m.tokenizer.get()).prompt_logprobs_field(r.prompts[0], choices[0].output->prompt_logprobs());
  out["usage"] = usage_json(prompt_token_count(r), completion_tokens);
  if (r.return_token_ids && r.prompts.size() == 1) out["prompt_token_ids"] = r.prompts[0];
  return out;
}

}  // namespace lockstep
