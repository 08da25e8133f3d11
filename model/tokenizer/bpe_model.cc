// BpeModel (see bpe_model.h).
#include "model/tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>

#include "model/tokenizer/tokenizer_error.h"

namespace lockstep {
namespace {

std::uint64_t pair_key(int a, int b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

std::size_t utf8_char_len(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b >> 5) == 0x6) return 2;
  if ((b >> 4) == 0xE) return 3;
  if ((b >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& m) {
  if (m.value("type", "BPE") != "BPE")
    throw TokenizerError("tokenizer model \"" + m.value("type", "") + "\" is not supported (BPE)");
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() > 0)
    throw TokenizerError("BPE dropout is not supported for inference");
  for (const auto& [tok, id] : m.at("vocab").items()) {
    const int i = id.get<int>();
    vocab_[tok] = i;
    max_id_ = std::max(max_id_, i);
  }
  id_to_token_.resize(max_id_ + 1);
  has_token_.assign(max_id_ + 1, false);
  for (const auto& [tok, id] : vocab_) {
    id_to_token_[id] = tok;
    has_token_[id] = true;
  }
  ignore_merges_ = m.value("ignore_merges", false);
  byte_fallback_ = m.contains("byte_fallback") && m["byte_fallback"].is_boolean() && m["byte_fallback"].get<bool>();
  if (m.contains("unk_token") && m["unk_token"].is_string()) {
    const auto it = vocab_.find(m["unk_token"].get<std::string>());
    if (it != vocab_.end()) unk_id_ = it->second;
  }
  const auto& merges = m.at("merges");
  int rank = 0;
  for (const auto& entry : merges) {
    std::string a, b;
    if (entry.is_string()) {  // "a b"
      const std::string s = entry.get<std::string>();
      const auto space = s.find(' ', 1);
      if (space == std::string::npos) throw TokenizerError("merge \"" + s + "\" is not \"left right\"");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else {  // ["a", "b"]
      a = entry.at(0).get<std::string>();
      b = entry.at(1).get<std::string>();
    }
    const auto ia = vocab_.find(a), ib = vocab_.find(b), im = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end())
      throw TokenizerError("merge \"" + a + " " + b + "\" (rank " + std::to_string(rank) + ") uses tokens missing from the vocabulary");
    merges_.emplace(pair_key(ia->second, ib->second), std::make_pair(rank, im->second));
    ++rank;
  }
}

std::optional<int> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int id) const {
  if (id < 0 || id > max_id_ || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

std::vector<int> BpeModel::merge_word(const std::string& word) const {
  struct Symbol { int id; int prev; int next; bool alive; };
  std::vector<Symbol> sym;
  for (std::size_t i = 0; i < word.size();) {
    const std::size_t n = std::min(utf8_char_len(static_cast<unsigned char>(word[i])), word.size() - i);
    const std::string ch = word.substr(i, n);
    const auto it = vocab_.find(ch);
    if (it != vocab_.end()) {
      sym.push_back({it->second, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1, true});
    } else if (byte_fallback_) {
      for (unsigned char b : ch) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "<0x%02X>", b);
        const auto hb = vocab_.find(hex);
        if (hb != vocab_.end()) sym.push_back({hb->second, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1, true});
        else if (unk_id_) sym.push_back({*unk_id_, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1, true});
      }
    } else if (unk_id_) {
      sym.push_back({*unk_id_, static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1, true});
    }
    i += n;
  }
  if (sym.empty()) return {};
  sym.back().next = -1;
  // Min-heap on (rank, position); stale entries are skipped when popped.
  struct Cand { int rank; int pos; int merged; };
  auto cmp = [](const Cand& x, const Cand& y) { return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos; };
  std::priority_queue<Cand, std::vector<Cand>, decltype(cmp)> heap(cmp);
  auto consider = [&](int pos) {
    if (pos < 0 || sym[pos].next < 0) return;
    const auto it = merges_.find(pair_key(sym[pos].id, sym[sym[pos].next].id));
    if (it != merges_.end()) heap.push({it->second.first, pos, it->second.second});
  };
  for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) consider(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Symbol& left = sym[c.pos];
    if (!left.alive || left.next < 0) continue;
    const auto it = merges_.find(pair_key(left.id, sym[left.next].id));
    if (it == merges_.end() || it->second.second != c.merged) continue;  // stale
    Symbol& right = sym[left.next];
    left.id = c.merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.pos;
    consider(left.prev);
    consider(c.pos);
  }
  std::vector<int> ids;
  for (int i = 0; i >= 0; i = sym[i].next) ids.push_back(sym[i].id);
  return ids;
}

std::vector<int> BpeModel::encode(const std::string& word) const {
  if (ignore_merges_) {
    const auto it = vocab_.find(word);
    if (it != vocab_.end()) return {it->second};
  }
  {
    std::lock_guard lock(cache_mu_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) return it->second;
  }
  std::vector<int> ids = merge_word(word);
  std::lock_guard lock(cache_mu_);
  if (cache_.size() > 200000) cache_.clear();  // bounded: long-running servers see endless words
  cache_.emplace(word, ids);
  return ids;
}

}  // namespace lockstep
