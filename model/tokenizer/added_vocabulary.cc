// AddedVocabulary (see added_vocabulary.h).
#include "model/tokenizer/added_vocabulary.h"

#include <array>
#include <cctype>

namespace lockstep {
namespace {

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

}  // namespace

AddedVocabulary::AddedVocabulary(const nlohmann::json& added) {
  if (!added.is_array()) return;
  for (const auto& a : added) {
    AddedToken t;
    t.id = a.at("id").get<int>();
    t.content = a.at("content").get<std::string>();
    t.single_word = a.value("single_word", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.normalized = a.value("normalized", false);
    t.special = a.value("special", false);
    if (t.content.empty()) continue;
    by_id_[t.id] = tokens_.size();
    by_content_[t.content] = tokens_.size();
    max_id_ = std::max(max_id_, t.id);
    tokens_.push_back(std::move(t));
  }
}

const AddedToken* AddedVocabulary::by_id(int id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view c) const {
  const auto it = by_content_.find(c);
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

std::vector<TextSegment> AddedVocabulary::split(const std::vector<TextSegment>& in, bool normalized) const {
  std::array<std::vector<const AddedToken*>, 256> by_first_byte;  // candidates per leading byte
  bool any = false;
  for (const AddedToken& t : tokens_)
    if (t.normalized == normalized) {
      by_first_byte[static_cast<unsigned char>(t.content[0])].push_back(&t);
      any = true;
    }
  if (!any) return in;
  std::vector<TextSegment> out;
  for (const TextSegment& seg : in) {
    if (seg.added_id >= 0) {
      out.push_back(seg);
      continue;
    }
    const std::string& s = seg.text;
    std::size_t emitted = 0, at = 0;
    while (at < s.size()) {
      // Leftmost-longest: the longest added token starting at the first position with any.
      const AddedToken* best = nullptr;
      for (const AddedToken* t : by_first_byte[static_cast<unsigned char>(s[at])]) {
        if (t->content.size() > s.size() - at || (best && t->content.size() <= best->content.size())) continue;
        if (s.compare(at, t->content.size(), t->content) != 0) continue;
        if (t->single_word) {
          const bool left_ok = at == 0 || !is_word_byte(static_cast<unsigned char>(s[at - 1]));
          const std::size_t end = at + t->content.size();
          const bool right_ok = end >= s.size() || !is_word_byte(static_cast<unsigned char>(s[end]));
          if (!left_ok || !right_ok) continue;
        }
        best = t;
      }
      if (!best) {
        ++at;
        continue;
      }
      std::size_t begin = at, end = at + best->content.size();
      if (best->lstrip)
        while (begin > emitted && is_space(static_cast<unsigned char>(s[begin - 1]))) --begin;
      if (best->rstrip)
        while (end < s.size() && is_space(static_cast<unsigned char>(s[end]))) ++end;
      if (begin > emitted) out.push_back({s.substr(emitted, begin - emitted), -1});
      out.push_back({s.substr(begin, end - begin), best->id});
      emitted = at = end;
    }
    if (emitted < s.size()) out.push_back({s.substr(emitted), -1});
  }
  return out;
}

}  // namespace lockstep
