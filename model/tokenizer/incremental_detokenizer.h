// Streams text as tokens arrive without ever emitting half a UTF-8 character: the tokens
// after the last committed one are decoded together with each new token, and their text goes
// out only once it ends on a complete character (a character split across tokens waits for
// its last byte). finish() flushes what is left.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer/tokenizer.h"

namespace lockstep {

class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens);

  // Text that became final with this token (possibly empty).
  std::string push(int token_id);
  // Whatever is still held back (an unfinished character decodes to U+FFFD).
  std::string finish();
  const std::string& text() const { return text_; }  // everything emitted so far

 private:
  std::shared_ptr<const Tokenizer> tok_;
  bool skip_special_;
  std::vector<int> ids_;
  std::size_t prefix_ = 0;  // ids before this are committed to text_
  std::string text_;
};

}  // namespace lockstep
