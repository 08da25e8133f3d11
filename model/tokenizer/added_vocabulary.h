// Added and special tokens of a tokenizer.json, found in the text before BPE sees it — the
// non-normalized ones in the raw text, the normalized ones after normalization — by
// leftmost-longest matching, with their lstrip / rstrip / single_word rules.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lockstep {

struct AddedToken {
  int id = 0;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// A stretch of input: plain text for the model, or one added token.
struct TextSegment {
  std::string text;
  int added_id = -1;  // >= 0: this segment is that added token
};

class AddedVocabulary {
 public:
  explicit AddedVocabulary(const nlohmann::json& added_tokens);

  // Splits plain-text segments on the added tokens whose `normalized` flag equals `normalized`.
  std::vector<TextSegment> split(const std::vector<TextSegment>& in, bool normalized) const;

  const AddedToken* by_id(int id) const;
  const AddedToken* by_content(std::string_view content) const;
  int max_id() const { return max_id_; }

 private:
  std::vector<AddedToken> tokens_;
  std::map<int, std::size_t> by_id_;
  std::map<std::string, std::size_t, std::less<>> by_content_;
  int max_id_ = -1;
};

}  // namespace lockstep
