// The pre-tokenizer pipeline of a tokenizer.json: Split steps (a regex with Unicode classes,
// compiled by PCRE2 with UTF, UCP and JIT; behaviours Isolated, Removed, MergedWithPrevious,
// MergedWithNext, Contiguous; optional invert) and ByteLevel (GPT-2 alphabet, optional prefix
// space and GPT-2 regex), in order. Input: one piece of text; output: the pieces BPE sees.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lockstep {

class Pcre2Regex;

class PreTokenizer {
 public:
  // Throws TokenizerError for an unsupported step or a regex PCRE2 rejects.
  explicit PreTokenizer(const nlohmann::json& spec);  // null: one piece, no byte-level mapping
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  std::vector<std::string> split(std::string_view text) const;

 private:
  struct Step;
  std::vector<Step> steps_;
};

// A compiled PCRE2 regex (UTF + UCP, JIT when available), matching like Oniguruma would for
// the patterns tokenizers use.
class Pcre2Regex {
 public:
  explicit Pcre2Regex(const std::string& pattern);
  ~Pcre2Regex();
  Pcre2Regex(const Pcre2Regex&) = delete;
  Pcre2Regex& operator=(const Pcre2Regex&) = delete;
  // Non-overlapping matches as (begin, end) byte offsets.
  std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view text) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
};

}  // namespace lockstep
