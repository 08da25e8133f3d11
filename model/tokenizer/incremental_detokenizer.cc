// IncrementalDetokenizer (see incremental_detokenizer.h).
#include "model/tokenizer/incremental_detokenizer.h"

#include "model/tokenizer/byte_level.h"

namespace lockstep {

IncrementalDetokenizer::IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens)
    : tok_(std::move(tokenizer)), skip_special_(skip_special_tokens) {}

std::string IncrementalDetokenizer::push(int token_id) {
  tok_->append_bytes(token_id, skip_special_, pending_);
  // UTF-8 (and its lossy reading) starts afresh after a complete character or an invalid run
  // that ends before the last bytes: what precedes reads the same whatever follows.
  const std::size_t ready = complete_utf8_prefix(pending_);
  if (ready == 0) return "";
  std::string piece = utf8_lossy(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  text_ += piece;
  return piece;
}

std::string IncrementalDetokenizer::finish() {
  std::string piece = utf8_lossy(pending_);
  pending_.clear();
  text_ += piece;
  return piece;
}

}  // namespace lockstep
