// IncrementalDetokenizer (see incremental_detokenizer.h).
#include "model/tokenizer/incremental_detokenizer.h"


namespace lockstep {
namespace {
const std::string kReplacement = "\xEF\xBF\xBD";
bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, kReplacement) == 0;
}
}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens)
    : tok_(std::move(tokenizer)), skip_special_(skip_special_tokens) {}

std::string IncrementalDetokenizer::push(int token_id) {
  ids_.push_back(token_id);
  const std::string window = tok_->decode(std::vector<int>(ids_.begin() + prefix_, ids_.end()), skip_special_);
  // A trailing U+FFFD means the last character is still incomplete: wait for more tokens.
  if (ends_with_replacement(window)) return "";
  text_ += window;
  // Byte-level text is concatenative at character boundaries, and tokens without bytes add
  // nothing wherever they stand: commit.
  prefix_ = ids_.size();
  return window;
}

std::string IncrementalDetokenizer::finish() {
  const std::string window = tok_->decode(std::vector<int>(ids_.begin() + prefix_, ids_.end()), skip_special_);
  text_ += window;
  prefix_ = ids_.size();
  return window;
}

}  // namespace lockstep
