// --reasoning-parser deepseek_r1: DeepSeek-R1 and its distills think first. Their chat template
// ends the prompt with "<think>\n", so the output is "thinking</think>answer" (a model may also
// repeat the "<think>" itself). The thinking goes to reasoning_content, the rest to content;
// without "</think>" everything is thinking (the model ran out of tokens while thinking).
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace lockstep {

struct ReasoningSplit {
  std::optional<std::string> reasoning;  // absent: no thinking
  std::optional<std::string> content;    // absent: nothing after </think>
};

// The whole output at once (non-streamed responses).
ReasoningSplit split_reasoning(const std::string& text);

// The same split as text arrives: each push returns the new reasoning and content pieces.
// A tail that may be the start of a tag is held back until the next push or finish, so no
// piece of "<think>" / "</think>" ever leaks into either field.
class ReasoningStream {
 public:
  struct Delta {
    std::string reasoning, content;
  };
  Delta push(const std::string& text);
  Delta finish();

 private:
  Delta consume(bool final);

  std::string pending_;
  bool opened_checked_ = false;  // a leading "<think>" was looked for
  bool in_content_ = false;      // "</think>" seen
};

}  // namespace lockstep
