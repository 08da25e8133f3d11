// The BPE model of a tokenizer.json: vocabulary, ranked merges, and the merge loop Hugging
// Face tokenizers runs (lowest rank first, leftmost on ties), with `ignore_merges` (a word
// that is itself in the vocabulary is one token, as Llama 3 sets) and a per-word cache.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace lockstep {

class BpeModel {
 public:
  explicit BpeModel(const nlohmann::json& model);  // throws TokenizerError

  // Token ids of one pre-tokenized piece (already in the byte-level alphabet).
  std::vector<int> encode(const std::string& word) const;

  std::optional<int> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int id) const;  // nullptr when the id has no token
  int max_id() const { return max_id_; }

 private:
  std::vector<int> merge_word(const std::string& word) const;

  std::unordered_map<std::string, int> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_token_;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<std::uint64_t, std::pair<int, int>> merges_;
  std::optional<int> unk_id_;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  int max_id_ = -1;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

}  // namespace lockstep
