// A /v1/completions or /v1/chat/completions request body, validated the way the OpenAI API
// and vLLM accept it, turned into token-id prompts (chat: the model's chat template, then the
// tokenizer without added special tokens; text completions: the tokenizer with them), sampling
// and stopping rules, and output options. Anything wrong is an ApiError naming the parameter;
// nothing is queued for such a request. Shared by `lockstep serve` and `lockstep batch`.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/engine/engine_service.h"
#include "app/openai/generation_defaults.h"
#include "model/chat_template/chat_template.h"
#include "model/tokenizer/tokenizer.h"

namespace lockstep {

enum class Endpoint { Completions, ChatCompletions };

// What the server knows about its model that request handling needs.
struct ModelContext {
  std::string served_model_name;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const ChatTemplate> chat_template;  // null: chat completions are refused
  int max_model_len = 4096;
  int vocab_size = 0;
  bool reasoning_parser = false;  // deepseek_r1: split <think>...</think> into reasoning_content
  GenerationDefaults generation_defaults;  // what a request's absent sampling fields take
};

struct OpenAIRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::vector<std::vector<int>> prompts;  // one per prompt (completions may carry several)
  int n = 1;
  bool stream = false;
  bool include_usage = false;
  bool return_token_ids = false;
  bool return_tokens_as_token_ids = false;  // logprobs name tokens "token_id:N" (vLLM)
  bool skip_special_tokens = true;
  bool include_stop_str_in_output = false;
  std::vector<std::string> stop;          // stop strings, matched on the output text
  // Completions with "echo": each prompt's text (as sent, or its token ids decoded), put before
  // its choices' text (streams: in the choice's first chunk); empty without echo.
  std::vector<std::string> echo_texts;
  // vLLM's "prompt_logprobs": k: every choice (completions) or the response (chat) carries each
  // prompt token's log-probability, rank and top k. Echo with logprobs computes them too
  // (generation.sampling.prompt_logprobs) to put in the logprobs field instead.
  bool prompt_logprobs_field = false;
  GenerationRequest generation;           // sampling and stop rules; prompt filled per choice
};

// The chat prompt text of a body with "messages" (also "tools", "chat_template_kwargs",
// "add_generation_prompt"), through the model's chat template. Throws ApiError.
std::string render_chat_prompt(const nlohmann::ordered_json& body, const ModelContext& model);
// Throws ApiError (400, naming `param`) for an id outside the model's vocabulary.
void check_token_ids(const std::vector<int>& ids, const ModelContext& model, const char* param);

// Throws ApiError.
OpenAIRequest parse_openai_request(Endpoint endpoint, const nlohmann::ordered_json& body, const ModelContext& model);

// The sequences a request runs: n choices per prompt, in response order (prompt-major). With a
// seed, choice c draws from seed + c * golden-ratio so the n choices differ yet reproduce.
struct ChoiceSpec {
  int prompt_index = 0;
  GenerationRequest generation;
};
std::vector<ChoiceSpec> expand_choices(const OpenAIRequest& request);

}  // namespace lockstep
