// CompletionSession (see completion_session.h).
#include "app/serve/completion_session.h"

#include <ctime>
#include <utility>

#include "app/openai/api_error.h"
#include "app/openai/openai_response.h"

namespace lockstep {
namespace {

using json = nlohmann::ordered_json;
using namespace std::chrono_literals;

// How often a waiting handler checks that its client is still connected.
constexpr auto kClientCheck = 20ms;  // a recv(MSG_PEEK) on one socket: cheap enough to run on every wake-up

}  // namespace

CompletionSession::CompletionSession(EngineService& service, const ModelContext& model, OpenAIRequest request)
    : service_(service), model_(model), request_(std::move(request)) {
  id_ = new_response_id(request_.endpoint);
  created_ = static_cast<std::int64_t>(std::time(nullptr));
}

CompletionSession::~CompletionSession() { abort_unfinished(); }

void CompletionSession::abort_unfinished() {
  for (Choice& c : choices_)
    if (!c.done && c.stream) {
      service_.abort(c.stream->id());
      c.done = true;
    }
}

bool CompletionSession::all_done() const {
  for (const Choice& c : choices_)
    if (!c.done) return false;
  return true;
}

bool CompletionSession::poll(std::chrono::milliseconds wait) {
  bool changed = false;
  auto drain = [&](Choice& c, std::chrono::milliseconds timeout) {
    RequestStream::Update u = c.stream->take(timeout);
    if (!u.prompt_logprobs.empty()) c.output->set_prompt_logprobs(std::move(u.prompt_logprobs));
    for (std::size_t i = 0; i < u.tokens.size(); ++i) {
      if (c.done) break;
      c.pieces.push_back({c.output->on_token(u.tokens[i], i < u.logprobs.size() ? &u.logprobs[i] : nullptr), 1});
      changed = true;
      if (c.output->stopped()) {  // a stop string: the text is final, end the sequence now
        service_.abort(c.stream->id());
        c.pieces.back().text += c.output->finish(FinishReason::Stop);
        c.done = true;
      }
    }
    if (u.done && !c.done) {
      changed = true;
      c.done = true;
      if (!u.error.empty() && c.output->token_ids().empty()) {
        c.error = u.error;
        c.error_status = u.error_status;
      }
      std::string tail = c.output->finish(u.finish);
      if (!c.pieces.empty()) c.pieces.back().text += tail;
      else c.pieces.push_back({std::move(tail), 0});
    }
  };
  for (Choice& c : choices_)
    if (!c.done) drain(c, 0ms);
  if (changed) return true;
  for (Choice& c : choices_)
    if (!c.done) {
      drain(c, wait);
      break;
    }
  return changed;
}

bool CompletionSession::start(const ClientGone& client_gone) {
  for (ChoiceSpec& spec : expand_choices(request_)) {
    Choice c;
    c.prompt_index = spec.prompt_index;
    c.output = std::make_unique<ChoiceOutput>(request_, model_.tokenizer);
    if (request_.generation.sampling.logprobs >= 0)
      c.logprobs = std::make_unique<LogprobsOutput>(request_, model_.tokenizer.get());
    c.stream = service_.submit(std::move(spec.generation));
    choices_.push_back(std::move(c));
  }
  // Wait for a first token (or the end) of every choice, so that a refusal is still an error
  // status rather than a broken stream.
  auto started = [&] {
    for (const Choice& c : choices_)
      if (!c.done && c.output->token_ids().empty()) return false;
    return true;
  };
  auto last_check = std::chrono::steady_clock::now();
  while (!started()) {
    poll(50ms);
    for (const Choice& c : choices_)
      if (!c.error.empty()) {
        abort_unfinished();
        throw ApiError(c.error_status == 503 ? 503 : 400, c.error);
      }
    if (std::chrono::steady_clock::now() - last_check > kClientCheck) {
      last_check = std::chrono::steady_clock::now();
      if (client_gone()) {
        abort_unfinished();
        return false;
      }
    }
  }
  return true;
}

std::optional<json> CompletionSession::response(const ClientGone& client_gone) {
  auto last_check = std::chrono::steady_clock::now();
  while (!all_done()) {
    poll(50ms);
    if (std::chrono::steady_clock::now() - last_check > kClientCheck) {
      last_check = std::chrono::steady_clock::now();
      if (client_gone()) {
        abort_unfinished();
        return std::nullopt;
      }
    }
  }
  std::vector<ChoiceResult> results;
  for (const Choice& c : choices_) results.push_back({c.output.get(), c.prompt_index});
  return build_response(request_, model_, id_, created_, results);
}

// One token's piece a chunk (a finish's text with its last token), so that a client sees every
// step as it happened however late this thread gets to it, and one that counts chunks counts
// tokens; vLLM sends a chunk per engine step the same way.
json CompletionSession::stream_choice(Choice& c, std::size_t index) {
  const bool chat = request_.endpoint == Endpoint::ChatCompletions;
  if (c.pieces.empty() && !(c.done && !c.finish_sent)) return nullptr;
  std::string text;
  if (!c.pieces.empty()) {
    text = std::move(c.pieces.front().text);
    c.tokens_taken += c.pieces.front().tokens;
    c.pieces.pop_front();
  }
  const bool finishing = c.done && c.pieces.empty() && !c.finish_sent;
  json prompt_logprobs;  // echo with logprobs: the prompt's, before the first chunk's tokens
  if (!request_.echo_texts.empty() && !c.echo_sent) {  // echo: the prompt opens the choice's first chunk
    text = request_.echo_texts[c.prompt_index] + text;
    c.echo_sent = true;
    if (c.logprobs) prompt_logprobs = c.logprobs->build_prompt(request_.prompts[c.prompt_index], c.output->prompt_logprobs());
  }
  // New tokens get a chunk even when their text is held back (an incomplete UTF-8 character,
  // a possible stop string), with "" as its text, as vLLM sends them: a client sees each step
  // (its first token: TTFT) as it happens, not when the text completes.
  const bool new_tokens = c.tokens_taken > c.tokens_sent;
  json choice;
  choice["index"] = index;
  if (chat) {
    json delta = json::object();
    if (model_.reasoning_parser) {
      ReasoningStream::Delta d = c.reasoning.push(text);
      if (finishing) {
        ReasoningStream::Delta tail = c.reasoning.finish();
        d.reasoning += tail.reasoning;
        d.content += tail.content;
      }
      if (!d.reasoning.empty()) delta["reasoning"] = delta["reasoning_content"] = d.reasoning;  // both names: see build_response
      if (!d.content.empty()) delta["content"] = d.content;
    } else if (!text.empty() || new_tokens) {
      delta["content"] = text;
    }
    if (delta.empty() && !finishing) return nullptr;  // reasoning parsed to nothing yet: vLLM skips it too
    choice["delta"] = std::move(delta);
  } else {
    if (text.empty() && !finishing && !new_tokens) return nullptr;
    choice["text"] = text;
  }
  const auto& ids = c.output->token_ids();
  choice["logprobs"] = c.logprobs ? c.logprobs->build(ids, c.output->logprobs(), c.tokens_sent, c.tokens_taken) : json(nullptr);
  if (!prompt_logprobs.is_null()) choice["logprobs"] = LogprobsOutput::concat(std::move(prompt_logprobs), choice["logprobs"]);
  choice["finish_reason"] = finishing ? json(c.output->finish_reason()) : json(nullptr);
  choice["stop_reason"] = finishing ? c.output->stop_reason() : json(nullptr);
  if (request_.return_token_ids)
    choice["token_ids"] = std::vector<int>(ids.begin() + static_cast<long>(c.tokens_sent),
                                           ids.begin() + static_cast<long>(c.tokens_taken));
  c.tokens_sent = c.tokens_taken;
  if (finishing) c.finish_sent = true;
  return choice;
}

bool CompletionSession::stream(const SseWriter& write, const ClientGone& client_gone) {
  auto send = [&](const json& chunk) {
    return write("data: " + chunk.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n");
  };
  const bool chat = request_.endpoint == Endpoint::ChatCompletions;
  // Chat streams open every choice with its role, as OpenAI's do.
  if (chat) {
    json opening = json::array();
    for (std::size_t i = 0; i < choices_.size(); ++i) {
      json delta = {{"role", "assistant"}, {"content", ""}};
      opening.push_back({{"index", i}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}});
    }
    json first = stream_chunk(request_, model_, id_, created_, std::move(opening));
    if (request_.return_token_ids) first["prompt_token_ids"] = request_.prompts[0];
    if (!send(first)) {
      abort_unfinished();
      return false;
    }
  }
  bool first_text_chunk = true;
  auto last_check = std::chrono::steady_clock::now();
  for (;;) {
    json list = json::array();
    for (std::size_t i = 0; i < choices_.size(); ++i) {
      json choice = stream_choice(choices_[i], i);
      if (!choice.is_null()) list.push_back(std::move(choice));
    }
    if (!list.empty()) {
      json chunk = stream_chunk(request_, model_, id_, created_, std::move(list));
      if (!chat && first_text_chunk && request_.return_token_ids) chunk["prompt_token_ids"] = request_.prompts[0];
      first_text_chunk = false;
      if (!send(chunk)) {
        abort_unfinished();
        return false;
      }
    }
    bool all_sent = true, pending = false;
    for (const Choice& c : choices_) all_sent = all_sent && c.finish_sent, pending = pending || !c.pieces.empty();
    if (all_sent) break;
    poll(pending ? 0ms : 50ms);  // pieces still to send: take what is new, do not wait
    if (std::chrono::steady_clock::now() - last_check > kClientCheck) {
      last_check = std::chrono::steady_clock::now();
      if (client_gone()) {
        abort_unfinished();
        return false;
      }
    }
  }
  if (request_.include_usage) {
    std::size_t completion_tokens = 0;
    for (const Choice& c : choices_) completion_tokens += c.output->token_ids().size();
    json last = stream_chunk(request_, model_, id_, created_, json::array());
    last["usage"] = usage_json(prompt_token_count(request_), completion_tokens);
    if (!send(last)) return false;
  }
  return write("data: [DONE]\n\n");
}

}  // namespace lockstep
