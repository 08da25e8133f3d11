// One /v1/completions or /v1/chat/completions request on rank 0's engine, run on the HTTP
// handler's thread: every choice (n per prompt) is submitted as its own sequence; tokens are
// detokenized, stop strings end a choice (the sequence is aborted at once), and the result is
// either one response body or a stream of SSE events (OpenAI's chunk shapes, the deepseek_r1
// reasoning split, usage at the end on request, "data: [DONE]"). A client that goes away, or a
// session destroyed early, aborts what still runs so its KV blocks come back.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/engine/engine_service.h"
#include "app/openai/choice_output.h"
#include "app/openai/logprobs_output.h"
#include "app/openai/openai_request.h"
#include "app/openai/reasoning_parser.h"

namespace lockstep {

class CompletionSession {
 public:
  using ClientGone = std::function<bool()>;
  using SseWriter = std::function<bool(std::string_view event)>;  // false: the client is gone

  CompletionSession(EngineService& service, const ModelContext& model, OpenAIRequest request);
  ~CompletionSession();

  // Submits every choice and waits until each has a first token or has ended. Throws ApiError
  // (400 refused, 503 shutting down) before anything was sent; returns false if the client left.
  bool start(const ClientGone& client_gone);
  // Non-streamed: waits for every choice; nullopt if the client left (request aborted).
  std::optional<nlohmann::ordered_json> response(const ClientGone& client_gone);
  // Streamed: writes every event; false if the client left (request aborted).
  bool stream(const SseWriter& write, const ClientGone& client_gone);

 private:
  struct Choice {
    std::shared_ptr<RequestStream> stream;
    std::unique_ptr<ChoiceOutput> output;
    int prompt_index = 0;
    bool done = false;
    std::string error;
    int error_status = 0;
    // Streaming bookkeeping: the text of each token not streamed yet, one chunk each (a
    // finish's flushed text joins its last token's; tokens = 0 when it came alone).
    struct Piece {
      std::string text;
      std::size_t tokens = 0;
    };
    std::deque<Piece> pieces;
    std::size_t tokens_taken = 0, tokens_sent = 0;  // tokens whose pieces were taken / whose ids were sent
    bool role_sent = false, finish_sent = false, echo_sent = false;
    ReasoningStream reasoning;
    std::unique_ptr<LogprobsOutput> logprobs;  // when asked
  };

  // Takes what the engine produced (waiting up to `wait` if nothing is ready). True if anything changed.
  bool poll(std::chrono::milliseconds wait);
  bool all_done() const;
  void abort_unfinished();
  nlohmann::ordered_json stream_choice(Choice& c, std::size_t index);

  EngineService& service_;
  const ModelContext& model_;
  OpenAIRequest request_;
  std::vector<Choice> choices_;
  std::string id_;
  std::int64_t created_ = 0;
};

}  // namespace lockstep
