// PreTokenizer and Pcre2Regex (see pre_tokenizer.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/oniguruma_classes.h"
#include "model/tokenizer/tokenizer_error.h"

namespace lockstep {

namespace {
// GPT-2's pattern, used by ByteLevel when use_regex is true.
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
}  // namespace

Pcre2Regex::Pcre2Regex(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  const std::string onig = with_oniguruma_classes(pattern);  // Oniguruma's Unicode classes, as the reference
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(onig.data()), onig.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    const std::string where = onig == pattern ? " at offset " + std::to_string(offset) : std::string();
    throw TokenizerError("regex \"" + pattern + "\" does not compile" + where + ": " + reinterpret_cast<char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  code_ = code;
}

Pcre2Regex::~Pcre2Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::vector<std::pair<std::size_t, std::size_t>> Pcre2Regex::find_all(std::string_view text) const {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  std::size_t at = 0;
  while (at <= text.size()) {
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), at,
                               at ? PCRE2_NO_UTF_CHECK : 0, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] == ov[0]) {  // empty match: step one character on
      if (ov[0] >= text.size()) break;
      std::size_t next = ov[0] + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      at = next;
      continue;
    }
    out.emplace_back(ov[0], ov[1]);
    at = ov[1];
  }
  pcre2_match_data_free(md);
  return out;
}

struct PreTokenizer::Step {
  enum Kind { Split, ByteLevel } kind = Split;
  enum Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous } behavior = Isolated;
  bool invert = false;
  bool add_prefix_space = false;
  bool use_regex = false;
  std::shared_ptr<Pcre2Regex> regex;

  // Splits one piece per the step.
  void apply(const std::string& piece, std::vector<std::string>& out) const {
    if (kind == ByteLevel) {
      std::string p = piece;
      if (add_prefix_space && !p.empty() && p[0] != ' ') p = " " + p;
      if (!use_regex) {
        out.push_back(bytes_to_byte_level(p));
        return;
      }
      for (const auto& [b, e] : regex->find_all(p)) out.push_back(bytes_to_byte_level(p.substr(b, e - b)));
      return;
    }
    // (begin, end, is_match) spans covering the piece.
    std::vector<std::tuple<std::size_t, std::size_t, bool>> spans;
    std::size_t at = 0;
    for (const auto& [b, e] : regex->find_all(piece)) {
      if (b > at) spans.emplace_back(at, b, invert);
      spans.emplace_back(b, e, !invert);
      at = e;
    }
    if (at < piece.size()) spans.emplace_back(at, piece.size(), invert);
    std::vector<std::string> local;
    bool merge_next = false;
    for (std::size_t i = 0; i < spans.size(); ++i) {
      const auto& [b, e, is_match] = spans[i];
      std::string s = piece.substr(b, e - b);
      switch (behavior) {
        case Isolated: local.push_back(s); break;
        case Removed: if (!is_match) local.push_back(s); break;
        case MergedWithPrevious:
          if (is_match && !local.empty()) local.back() += s; else local.push_back(s);
          break;
        case MergedWithNext:
          if (merge_next && !local.empty()) local.back() += s; else local.push_back(s);
          merge_next = is_match;
          break;
        case Contiguous:
          if (i > 0 && std::get<2>(spans[i - 1]) == is_match && is_match && !local.empty()) local.back() += s;
          else local.push_back(s);
          break;
      }
    }
    for (std::string& s : local)
      if (!s.empty()) out.push_back(std::move(s));
  }
};

PreTokenizer::PreTokenizer(const nlohmann::json& spec) {
  if (spec.is_null()) return;
  std::vector<nlohmann::json> list;
  if (spec.value("type", "") == "Sequence") {
    for (const auto& s : spec.at("pretokenizers")) list.push_back(s);
  } else {
    list.push_back(spec);
  }
  for (const auto& s : list) {
    const std::string type = s.value("type", "");
    Step step;
    if (type == "Split") {
      step.kind = Step::Split;
      const auto& pat = s.at("pattern");
      std::string regex;
      if (pat.contains("Regex")) {
        regex = pat["Regex"].get<std::string>();
      } else {  // a literal string: escape it
        for (char ch : pat.at("String").get<std::string>()) {
          if (std::string("\\^$.|?*+()[]{}").find(ch) != std::string::npos) regex += '\\';
          regex += ch;
        }
      }
      step.regex = std::make_shared<Pcre2Regex>(regex);
      const std::string b = s.value("behavior", "Isolated");
      if (b == "Isolated") step.behavior = Step::Isolated;
      else if (b == "Removed") step.behavior = Step::Removed;
      else if (b == "MergedWithPrevious") step.behavior = Step::MergedWithPrevious;
      else if (b == "MergedWithNext") step.behavior = Step::MergedWithNext;
      else if (b == "Contiguous") step.behavior = Step::Contiguous;
      else throw TokenizerError("Split behavior \"" + b + "\" is not supported");
      step.invert = s.value("invert", false);
    } else if (type == "ByteLevel") {
      step.kind = Step::ByteLevel;
      step.add_prefix_space = s.value("add_prefix_space", false);
      step.use_regex = s.value("use_regex", true);
      if (step.use_regex) step.regex = std::make_shared<Pcre2Regex>(kGpt2Pattern);
    } else {
      throw TokenizerError("pre-tokenizer \"" + type + "\" is not supported (Split, ByteLevel, Sequence)");
    }
    steps_.push_back(std::move(step));
  }
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string> pieces{std::string(text)};
  for (const Step& step : steps_) {
    std::vector<std::string> next;
    for (const std::string& p : pieces) step.apply(p, next);
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace lockstep
