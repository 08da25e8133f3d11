// Streams text as tokens arrive without ever emitting half a UTF-8 character: each token's bytes
// join those held back, and everything up to the last complete character goes out (invalid
// bytes as U+FFFD, as decode() has them), so at most the 1-3 bytes of an unfinished character
// wait for the next token. The pieces concatenate to decode() of all the tokens. finish()
// flushes what is left. (Decoding a growing window of tokens until its text ended on a complete
// character instead cost time quadratic in a run of tokens that never complete one, such as ids
// past the vocabulary or stray lead bytes: 0.8 ms a step at batch 256 in the offline benchmark.)
#pragma once

#include <memory>
#include <string>

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
  // Bytes of an unfinished character waiting for the next token (at most 3).
  std::size_t held_back_bytes() const { return pending_.size(); }

 private:
  std::shared_ptr<const Tokenizer> tok_;
  bool skip_special_;
  std::string pending_;  // bytes not emitted yet
  std::string text_;
};

}  // namespace lockstep
