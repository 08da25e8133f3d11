// parse_openai_request (see openai_request.h).
#include "app/openai/openai_request.h"

#include "app/openai/api_error.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace lockstep {
namespace {

using json = nlohmann::ordered_json;

template <typename T>
std::optional<T> opt(const json& b, const char* key) {
  if (!b.contains(key) || b[key].is_null()) return std::nullopt;
  const json& v = b[key];
  const auto wrong = [&](const char* why) {
    return ApiError(400, std::string("'") + key + "' " + why + ": " + v.dump(), key);
  };
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // An integer (3 or 3.0, as the OpenAI API's validation takes them) that fits T: json's own
    // conversion would truncate 3.5 and wrap 1e10.
    const double d = v.is_number() ? v.get<double>() : 0.5;
    if (std::trunc(d) != d) throw wrong("must be an integer");
    if (d < static_cast<double>(std::numeric_limits<T>::min()) || d > static_cast<double>(std::numeric_limits<T>::max()))
      throw wrong("is out of range");
    return v.is_number_float() ? static_cast<T>(d) : v.get<T>();
  } else {
    try {
      return v.get<T>();
    } catch (const nlohmann::json::exception&) {
      throw wrong("has the wrong type");
    }
  }
}

bool is_token_list(const json& v) {
  if (!v.is_array() || v.empty()) return false;
  for (const json& x : v)
    if (!x.is_number_integer()) return false;
  return true;
}

// Chat content: a string, or a list of {"type": "text", "text": ...} parts (joined by newlines).
json normalize_messages(const json& messages) {
  if (!messages.is_array() || messages.empty()) throw ApiError(400, "'messages' must be a non-empty list", "messages");
  json out = json::array();
  for (const json& m : messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw ApiError(400, "each message needs a string 'role'", "messages");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "developer")
      throw ApiError(400, "unknown message role '" + role + "'", "messages");
    json copy = m;
    if (m.contains("content") && m["content"].is_array()) {
      std::string text;  // the parts' texts joined by newlines, as vLLM joins them
      bool first = true;
      for (const json& part : m["content"]) {
        if (!part.is_object() || part.value("type", "") != "text")
          throw ApiError(400, "only text content parts are supported", "messages");
        if (!first) text += '\n';
        text += part.value("text", "");
        first = false;
      }
      copy["content"] = text;
    } else if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
      throw ApiError(400, "message 'content' must be a string or a list of text parts", "messages");
    }
    if (role != "assistant" && (!copy.contains("content") || copy["content"].is_null())) copy["content"] = "";
    out.push_back(std::move(copy));
  }
  return out;
}

}  // namespace

std::string render_chat_prompt(const json& b, const ModelContext& m) {
  if (!m.chat_template) throw ApiError(400, "this model has no chat template; use /v1/completions", "messages");
  if (!m.tokenizer) throw ApiError(400, "this model has no tokenizer", "messages");
  const json messages = normalize_messages(b.contains("messages") ? b["messages"] : json());
  const json tools = b.contains("tools") && !b["tools"].is_null() ? b["tools"] : json();
  json extra = b.contains("chat_template_kwargs") && b["chat_template_kwargs"].is_object() ? b["chat_template_kwargs"]
                                                                                            : json::object();
  const bool add_generation_prompt = opt<bool>(b, "add_generation_prompt").value_or(true);
  // vLLM's continue_final_message: the reply continues the last (assistant) message instead of
  // starting a new turn, so it cannot also add the generation prompt.
  const bool continue_final_message = opt<bool>(b, "continue_final_message").value_or(false);
  if (continue_final_message && add_generation_prompt)
    throw ApiError(400, "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
                   "continue_final_message");
  try {
    return m.chat_template->render(messages, tools, add_generation_prompt, extra, continue_final_message);
  } catch (const ChatTemplateError& e) {
    throw ApiError(400, std::string("the chat template rejected this conversation: ") + e.what(), "messages");
  }
}

void check_token_ids(const std::vector<int>& ids, const ModelContext& m, const char* param) {
  for (int id : ids)
    if (id < 0 || (m.vocab_size > 0 && id >= m.vocab_size))
      throw ApiError(400, "token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                              std::to_string(m.vocab_size - 1) + ")", param);
}

namespace {

// Requests whose output must follow a grammar (JSON mode, a JSON schema, vLLM's guided_* and
// structured_outputs, a forced tool call) need constrained decoding, which this server does not
// do: a 400 naming the parameter, rather than free text the client would take as conforming.
void reject_constrained_decoding(const nlohmann::ordered_json& b) {
  auto present = [&](const char* key) { return b.contains(key) && !b[key].is_null(); };
  if (present("response_format")) {
    const auto& f = b["response_format"];
    const std::string type = f.is_object() && f.contains("type") && f["type"].is_string() ? f["type"].get<std::string>() : "";
    if (type != "text")
      throw ApiError(400, "'response_format' " + (type.empty() ? f.dump() : "of type '" + type + "'") +
                              " needs structured output (constrained decoding), which this server does not support yet;"
                              " only {\"type\": \"text\"}",
                     "response_format");
  }
  for (const char* key : {"guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs"})
    if (present(key))
      throw ApiError(400, std::string("'") + key + "' (constrained decoding) is not supported by this server yet", key);
  if (present("tool_choice")) {
    const auto& c = b["tool_choice"];
    if (!(c.is_string() && (c == "none" || c == "auto")))
      throw ApiError(400, "'tool_choice' " + c.dump() + " forces a tool call (constrained decoding), which this server "
                              "does not support yet; use \"auto\" or \"none\"", "tool_choice");
  }
}

}  // namespace

OpenAIRequest parse_openai_request(Endpoint endpoint, const json& b, const ModelContext& m) {
  if (!b.is_object()) throw ApiError(400, "the request body must be a JSON object");
  OpenAIRequest r;
  r.endpoint = endpoint;
  if (const auto model = opt<std::string>(b, "model"); model && *model != m.served_model_name)
    throw ApiError(404, "the model '" + *model + "' does not exist; this server serves '" + m.served_model_name + "'",
                   "model");

  if (endpoint == Endpoint::Completions) {
    if (!b.contains("prompt")) throw ApiError(400, "'prompt' is required", "prompt");
    const json& p = b["prompt"];
    const bool echo = opt<bool>(b, "echo").value_or(false);
    auto add_text = [&](const std::string& text) {
      if (!m.tokenizer) throw ApiError(400, "this model has no tokenizer: send prompts as token ids", "prompt");
      r.prompts.push_back(m.tokenizer->encode(text, /*add_special_tokens=*/true));
      if (echo) r.echo_texts.push_back(text);
    };
    auto add_ids = [&](std::vector<int> ids) {
      if (echo) r.echo_texts.push_back(m.tokenizer ? m.tokenizer->decode(ids, /*skip_special_tokens=*/false) : "");
      r.prompts.push_back(std::move(ids));
    };
    if (p.is_string()) {
      add_text(p.get<std::string>());
    } else if (is_token_list(p)) {
      add_ids(p.get<std::vector<int>>());
    } else if (p.is_array() && !p.empty()) {
      for (const json& item : p) {
        if (item.is_string()) add_text(item.get<std::string>());
        else if (is_token_list(item)) add_ids(item.get<std::vector<int>>());
        else throw ApiError(400, "each prompt must be a string or a non-empty list of token ids", "prompt");
      }
    } else {
      throw ApiError(400, "'prompt' must be a string, a list of strings, or (a list of) token-id lists", "prompt");
    }
  } else {
    if (opt<bool>(b, "echo").value_or(false))
      throw ApiError(400, "'echo' is not supported for chat completions yet", "echo");
    const std::string text = render_chat_prompt(b, m);
    r.prompts.push_back(m.tokenizer->encode(text, /*add_special_tokens=*/false));
  }
  for (const auto& ids : r.prompts) check_token_ids(ids, m, "prompt");

  GenerationRequest& g = r.generation;
  const auto max_tokens = endpoint == Endpoint::ChatCompletions && b.contains("max_completion_tokens")
                              ? opt<int>(b, "max_completion_tokens")
                              : opt<int>(b, "max_tokens");
  std::size_t longest = 0;
  for (const auto& p : r.prompts) longest = std::max(longest, p.size());
  if (static_cast<int>(longest) >= m.max_model_len)
    throw ApiError(400, "this model's maximum context length is " + std::to_string(m.max_model_len) +
                            " tokens, but the prompt has " + std::to_string(longest), "prompt");
  const int room = m.max_model_len - static_cast<int>(longest);
  // The default, like vLLM's: 16 for completions, whatever fits for chat.
  const GenerationDefaults& defaults = m.generation_defaults;
  g.stop.max_tokens = max_tokens.value_or(endpoint == Endpoint::Completions ? 16 : room);
  // The generation config's max_new_tokens caps the request's (vLLM takes the smallest).
  if (defaults.max_tokens && *defaults.max_tokens > 0) g.stop.max_tokens = std::min(g.stop.max_tokens, *defaults.max_tokens);
  if (g.stop.max_tokens < 1) throw ApiError(400, "'max_tokens' must be at least 1", "max_tokens");
  if (g.stop.max_tokens > room)
    throw ApiError(400, "max_tokens " + std::to_string(g.stop.max_tokens) + " plus the prompt's " +
                            std::to_string(longest) + " tokens exceed the maximum context length " +
                            std::to_string(m.max_model_len), "max_tokens");
  g.sampling.temperature = opt<float>(b, "temperature").value_or(defaults.temperature.value_or(1.0f));
  if (g.sampling.temperature < 0 || g.sampling.temperature > 100)
    throw ApiError(400, "'temperature' must be in [0, 100]", "temperature");
  g.sampling.top_p = opt<float>(b, "top_p").value_or(defaults.top_p.value_or(1.0f));
  if (!(g.sampling.top_p > 0 && g.sampling.top_p <= 1)) throw ApiError(400, "'top_p' must be in (0, 1]", "top_p");
  g.sampling.top_k = opt<int>(b, "top_k").value_or(defaults.top_k.value_or(-1));
  if (g.sampling.top_k == 0 || g.sampling.top_k < -1) throw ApiError(400, "'top_k' must be -1 (off) or positive", "top_k");
  g.sampling.min_p = opt<float>(b, "min_p").value_or(defaults.min_p.value_or(0.0f));
  if (g.sampling.min_p < 0 || g.sampling.min_p > 1) throw ApiError(400, "'min_p' must be in [0, 1]", "min_p");
  if (const auto seed = opt<std::int64_t>(b, "seed")) g.sampling.seed = static_cast<std::uint64_t>(*seed);
  g.stop.ignore_eos = opt<bool>(b, "ignore_eos").value_or(false);
  g.stop.min_tokens = opt<int>(b, "min_tokens").value_or(0);
  g.stop.stop_token_ids = opt<std::vector<int>>(b, "stop_token_ids").value_or(std::vector<int>{});
  if (b.contains("stop") && !b["stop"].is_null()) {
    if (b["stop"].is_string()) r.stop.push_back(b["stop"].get<std::string>());
    else r.stop = opt<std::vector<std::string>>(b, "stop").value_or(std::vector<std::string>{});
    for (const std::string& s : r.stop)
      if (s.empty()) throw ApiError(400, "stop strings must not be empty", "stop");
  }
  r.include_stop_str_in_output = opt<bool>(b, "include_stop_str_in_output").value_or(false);
  r.skip_special_tokens = opt<bool>(b, "skip_special_tokens").value_or(true);
  r.n = opt<int>(b, "n").value_or(1);
  if (r.n < 1 || r.n > 128) throw ApiError(400, "'n' must be between 1 and 128", "n");
  r.stream = opt<bool>(b, "stream").value_or(false);
  if (b.contains("stream_options") && b["stream_options"].is_object())
    r.include_usage = b["stream_options"].value("include_usage", false);
  r.return_token_ids = opt<bool>(b, "return_token_ids").value_or(false);
  r.return_tokens_as_token_ids = opt<bool>(b, "return_tokens_as_token_ids").value_or(false);
  // Penalties, with vLLM's ranges.
  g.sampling.presence_penalty = opt<float>(b, "presence_penalty").value_or(0.0f);
  g.sampling.frequency_penalty = opt<float>(b, "frequency_penalty").value_or(0.0f);
  g.sampling.repetition_penalty = opt<float>(b, "repetition_penalty").value_or(defaults.repetition_penalty.value_or(1.0f));
  for (const auto& [key, v] : {std::pair{"presence_penalty", g.sampling.presence_penalty},
                               std::pair{"frequency_penalty", g.sampling.frequency_penalty}})
    if (!(v >= -2.0f && v <= 2.0f)) throw ApiError(400, std::string("'") + key + "' must be in [-2, 2]", key);
  if (!(g.sampling.repetition_penalty > 0.0f && g.sampling.repetition_penalty <= 2.0f))
    throw ApiError(400, "'repetition_penalty' must be in (0, 2]", "repetition_penalty");
  // Log-probabilities: completions take "logprobs": k; chat takes "logprobs": true and "top_logprobs": k.
  if (endpoint == Endpoint::Completions) {
    if (b.contains("logprobs") && !b["logprobs"].is_null()) {
      const auto k = opt<int>(b, "logprobs");
      if (*k < 0 || *k > kMaxLogprobs)
        throw ApiError(400, "'logprobs' must be between 0 and " + std::to_string(kMaxLogprobs), "logprobs");
      g.sampling.logprobs = *k;
    }
  } else {
    const bool want = opt<bool>(b, "logprobs").value_or(false);
    const auto top = opt<int>(b, "top_logprobs");
    if (top && (*top < 0 || *top > kMaxLogprobs))
      throw ApiError(400, "'top_logprobs' must be between 0 and " + std::to_string(kMaxLogprobs), "top_logprobs");
    if (top && *top > 0 && !want) throw ApiError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs");
    if (want) g.sampling.logprobs = top.value_or(0);
  }
  if (const auto best_of = opt<int>(b, "best_of"); best_of && *best_of != 1 && *best_of != r.n)
    throw ApiError(400, "'best_of' other than n is not supported", "best_of");
  if (b.contains("suffix") && !b["suffix"].is_null())
    throw ApiError(400, "'suffix' is not supported by this server yet", "suffix");
  // logit_bias: {"token id": bias}, ids in the vocabulary, biases clamped to [-100, 100] (as vLLM).
  if (b.contains("logit_bias") && !b["logit_bias"].is_null()) {
    if (!b["logit_bias"].is_object()) throw ApiError(400, "'logit_bias' must map token ids to numbers", "logit_bias");
    for (const auto& [key, value] : b["logit_bias"].items()) {
      std::size_t used = 0;
      long id = -1;
      try {
        id = std::stol(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != key.size() || !value.is_number())
        throw ApiError(400, "'logit_bias' must map token ids to numbers; got \"" + key + "\": " + value.dump(),
                       "logit_bias");
      if (id < 0 || (m.vocab_size > 0 && id >= m.vocab_size) || id > std::numeric_limits<int>::max())
        throw ApiError(400, "token id " + key + " in 'logit_bias' is outside the vocabulary (0.." +
                                std::to_string(m.vocab_size - 1) + ")", "logit_bias");
      g.sampling.logit_bias.emplace_back(static_cast<int>(id), std::clamp(value.get<float>(), -100.0f, 100.0f));
    }
  }
  // Prompt log-probabilities: vLLM's prompt_logprobs (not streamed, as in vLLM), and echo with
  // logprobs (the legacy completions way, e.g. lm-evaluation-harness' loglikelihood requests).
  if (b.contains("prompt_logprobs") && !b["prompt_logprobs"].is_null()) {
    const auto k = opt<int>(b, "prompt_logprobs");
    if (!k || *k < 0 || *k > kMaxLogprobs)
      throw ApiError(400, "'prompt_logprobs' must be between 0 and " + std::to_string(kMaxLogprobs), "prompt_logprobs");
    if (r.stream) throw ApiError(400, "'prompt_logprobs' are not available when 'stream' is true", "prompt_logprobs");
    g.sampling.prompt_logprobs = *k;
    r.prompt_logprobs_field = true;
  }
  if (!r.echo_texts.empty() && g.sampling.logprobs >= 0)
    g.sampling.prompt_logprobs = std::max(g.sampling.prompt_logprobs, g.sampling.logprobs);
  reject_constrained_decoding(b);
  return r;
}

std::vector<ChoiceSpec> expand_choices(const OpenAIRequest& r) {
  std::vector<ChoiceSpec> out;
  for (std::size_t p = 0; p < r.prompts.size(); ++p) {
    for (int c = 0; c < r.n; ++c) {
      ChoiceSpec spec{static_cast<int>(p), r.generation};
      spec.generation.prompt = r.prompts[p];
      if (spec.generation.sampling.seed && c > 0)
        spec.generation.sampling.seed = *spec.generation.sampling.seed + 0x9E3779B97F4A7C15ull * c;
      out.push_back(std::move(spec));
    }
  }
  return out;
}

}  // namespace lockstep
