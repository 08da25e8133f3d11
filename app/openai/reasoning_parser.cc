// deepseek_r1 reasoning split (see reasoning_parser.h).
#include "app/openai/reasoning_parser.h"

#include <algorithm>
#include <string_view>

namespace lockstep {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

// Length of the longest suffix of `s` that is a proper prefix of `tag`.
std::size_t partial_tag_suffix(const std::string& s, std::string_view tag) {
  for (std::size_t k = std::min(s.size(), tag.size() - 1); k > 0; --k)
    if (std::string_view(s).substr(s.size() - k) == tag.substr(0, k)) return k;
  return 0;
}

}  // namespace

ReasoningSplit split_reasoning(const std::string& text) {
  std::string t = text;
  if (const auto start = t.find(kOpen); start != std::string::npos) t = t.substr(start + kOpen.size());
  const auto end = t.find(kClose);
  if (end == std::string::npos) return {t, std::nullopt};
  std::string content = t.substr(end + kClose.size());
  return {t.substr(0, end), content.empty() ? std::nullopt : std::optional<std::string>(std::move(content))};
}

ReasoningStream::Delta ReasoningStream::push(const std::string& text) {
  pending_ += text;
  return consume(false);
}

ReasoningStream::Delta ReasoningStream::finish() { return consume(true); }

ReasoningStream::Delta ReasoningStream::consume(bool final) {
  Delta d;
  if (in_content_) {
    d.content.swap(pending_);
    return d;
  }
  if (!opened_checked_) {
    // split_reasoning drops everything up to a "<think>" the model wrote itself; streaming can
    // only do that for one at the very start (after whitespace), which is where models put it.
    const auto first = pending_.find_first_not_of(" \t\r\n");
    if (first == std::string::npos && !final) return d;
    if (first != std::string::npos) {
      const std::string_view rest = std::string_view(pending_).substr(first);
      if (rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest && !final) return d;
      if (rest.substr(0, kOpen.size()) == kOpen) pending_.erase(0, first + kOpen.size());
    }
    opened_checked_ = true;
  }
  if (const auto end = pending_.find(kClose); end != std::string::npos) {
    d.reasoning = pending_.substr(0, end);
    d.content = pending_.substr(end + kClose.size());
    pending_.clear();
    in_content_ = true;
    return d;
  }
  const std::size_t hold = final ? 0 : partial_tag_suffix(pending_, kClose);
  d.reasoning = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return d;
}

}  // namespace lockstep
