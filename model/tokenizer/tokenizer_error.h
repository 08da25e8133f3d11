// A problem with a tokenizer file or with input the tokenizer cannot take; the message says
// which file and what.
#pragma once

#include <stdexcept>

namespace lockstep {

struct TokenizerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace lockstep
