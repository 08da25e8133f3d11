// One choice of a completion as its tokens arrive: the streamed text (never half a UTF-8
// character), stop strings matched across token boundaries (the text is cut before the stop
// string and the sequence must stop), the finish and stop reasons, and — for reasoning models
// (--reasoning-parser deepseek_r1) — the split of <think>...</think> into reasoning_content.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/engine/sequence.h"
#include "app/openai/openai_request.h"
#include "model/tokenizer/incremental_detokenizer.h"

namespace lockstep {

class ChoiceOutput {
 public:
  ChoiceOutput(const OpenAIRequest& request, std::shared_ptr<const Tokenizer> tokenizer);

  // Adds a generated token; returns the new text (for streaming). Sets stopped() when a stop
  // string appeared: the caller must end the sequence.
  std::string on_token(int id, const TokenLogprobs* logprobs = nullptr);
  // The sequence ended: flushes held-back text; `reason` is the engine's.
  std::string finish(FinishReason reason);

  bool stopped() const { return stop_hit_.has_value(); }
  bool finished() const { return finished_; }
  const std::vector<int>& token_ids() const { return token_ids_; }
  const std::vector<TokenLogprobs>& logprobs() const { return logprobs_; }  // one per token, if asked
  // The prompt's (entry t: prompt token t's; entry 0 unused), when asked; the engine hands them
  // over with the first token.
  void set_prompt_logprobs(std::vector<TokenLogprobs> lps) { prompt_logprobs_ = std::move(lps); }
  const std::vector<TokenLogprobs>& prompt_logprobs() const { return prompt_logprobs_; }
  const std::string& text() const { return text_; }
  std::string finish_reason() const;
  nlohmann::ordered_json stop_reason() const;  // the stop string or stop token id, else null

 private:
  std::string add_text(std::string piece);

  const OpenAIRequest& request_;
  std::unique_ptr<IncrementalDetokenizer> detok_;
  std::vector<int> token_ids_;
  std::vector<TokenLogprobs> logprobs_;
  std::vector<TokenLogprobs> prompt_logprobs_;
  std::string text_;
  std::size_t emitted_ = 0;  // bytes of text_ handed out by on_token/finish
  std::optional<std::string> stop_hit_;
  std::optional<int> stop_token_;
  FinishReason reason_ = FinishReason::None;
  bool finished_ = false;
};

}  // namespace lockstep
