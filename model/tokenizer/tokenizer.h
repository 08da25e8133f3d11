// A Hugging Face tokenizer.json run the way the `tokenizers` library runs it: added/special
// tokens split out first, the normalizer (NFC/NFKC/... via ICU, or none), the pre-tokenizer
// pipeline, BPE, then the post-processor (ByteLevel, TemplateProcessing — which decides
// BOS/EOS insertion — or a Sequence of them). Decoding maps ids back through the ByteLevel
// decoder; ids without a token (embedding rows past the vocabulary) decode to nothing.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/added_vocabulary.h"
#include "model/tokenizer/bpe_model.h"
#include "model/tokenizer/pre_tokenizer.h"
#include "model/tokenizer/tokenizer_error.h"

namespace lockstep {

class Tokenizer {
 public:
  // dir/tokenizer.json; throws TokenizerError naming the file.
  static std::shared_ptr<const Tokenizer> from_dir(const std::string& dir);
  static std::shared_ptr<const Tokenizer> from_json_text(const std::string& text, const std::string& where);

  std::vector<int> encode(std::string_view text, bool add_special_tokens) const;
  std::string decode(const std::vector<int>& ids, bool skip_special_tokens) const;
  // The bytes token `id` stands for, appended to `bytes` (decode() is these bytes of every id,
  // read as UTF-8 with U+FFFD for what is invalid).
  void append_bytes(int id, bool skip_special_tokens, std::string& bytes) const;

  std::optional<int> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int id) const;
  bool is_special(int id) const;
  int vocab_size() const;  // highest id + 1

 private:
  Tokenizer(const nlohmann::json& j, const std::string& where);
  std::string normalize(std::string_view text) const;

  std::string normalizer_;  // "", "NFC", "NFD", "NFKC", "NFKD"
  AddedVocabulary added_;
  PreTokenizer pre_;
  BpeModel model_;
  std::vector<int> single_prefix_, single_suffix_;  // TemplateProcessing around a single sequence
  bool byte_level_decoder_ = true;
};

}  // namespace lockstep
