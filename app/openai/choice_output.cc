// ChoiceOutput (see choice_output.h).
#include "app/openai/choice_output.h"

#include <algorithm>

namespace lockstep {

ChoiceOutput::ChoiceOutput(const OpenAIRequest& request, std::shared_ptr<const Tokenizer> tokenizer)
    : request_(request) {
  if (tokenizer) detok_ = std::make_unique<IncrementalDetokenizer>(std::move(tokenizer), request.skip_special_tokens);
}

std::string ChoiceOutput::add_text(std::string piece) {
  if (stop_hit_ || piece.empty()) return "";
  const std::size_t before = text_.size();
  text_ += piece;
  // A stop string may start up to (length - 1) bytes before the new text.
  std::size_t cut = std::string::npos;
  for (const std::string& s : request_.stop) {
    const std::size_t from = before >= s.size() - 1 ? before - (s.size() - 1) : 0;
    const std::size_t at = text_.find(s, from);
    if (at != std::string::npos && (cut == std::string::npos || at < cut)) {
      cut = at;
      stop_hit_ = s;
    }
  }
  if (stop_hit_) text_.resize(request_.include_stop_str_in_output ? cut + stop_hit_->size() : cut);
  // Hold back a tail that could still become a stop string, so streamed text never has to be
  // taken back.
  std::size_t hold = 0;
  if (!stop_hit_)
    for (const std::string& s : request_.stop)
      for (std::size_t k = std::min(s.size() - 1, text_.size()); k > hold; --k)
        if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
  const std::size_t ready = text_.size() - hold;
  if (ready <= emitted_) return "";
  std::string out = text_.substr(emitted_, ready - emitted_);
  emitted_ = ready;
  return out;
}

std::string ChoiceOutput::on_token(int id, const TokenLogprobs* logprobs) {
  if (finished_ || stop_hit_) return "";
  token_ids_.push_back(id);
  if (logprobs) logprobs_.push_back(*logprobs);
  if (std::find(request_.generation.stop.stop_token_ids.begin(), request_.generation.stop.stop_token_ids.end(), id) !=
      request_.generation.stop.stop_token_ids.end())
    stop_token_ = id;
  return detok_ ? add_text(detok_->push(id)) : "";
}

std::string ChoiceOutput::finish(FinishReason reason) {
  if (finished_) return "";
  std::string out = detok_ && !stop_hit_ ? add_text(detok_->finish()) : "";
  finished_ = true;
  reason_ = reason;
  if (emitted_ < text_.size()) {  // release any held-back tail
    out += text_.substr(emitted_);
    emitted_ = text_.size();
  }
  return out;
}

std::string ChoiceOutput::finish_reason() const {
  if (stop_hit_) return "stop";
  switch (reason_) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Abort: return "abort";
    case FinishReason::None: return "";
  }
  return "";
}

nlohmann::ordered_json ChoiceOutput::stop_reason() const {
  if (stop_hit_) return *stop_hit_;
  if (reason_ == FinishReason::Stop && stop_token_) return *stop_token_;
  return nullptr;
}

}  // namespace lockstep
