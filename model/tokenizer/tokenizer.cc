// Tokenizer (see tokenizer.h).
#include "model/tokenizer/tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <fstream>
#include <sstream>

#include "model/tokenizer/byte_level.h"

namespace lockstep {
namespace {

// Collects a normalizer spec (possibly a Sequence) into one Unicode normal form or none.
std::string normal_form(const nlohmann::json& n, const std::string& where) {
  if (n.is_null()) return "";
  const std::string type = n.value("type", "");
  if (type == "Sequence") {
    std::string form;
    for (const auto& sub : n.at("normalizers")) {
      const std::string f = normal_form(sub, where);
      if (!f.empty()) {
        if (!form.empty() && form != f) throw TokenizerError(where + ": normalizer sequence mixes " + form + " and " + f);
        form = f;
      }
    }
    return form;
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") return type;
  throw TokenizerError(where + ": normalizer \"" + type + "\" is not supported (NFC, NFD, NFKC, NFKD, Sequence)");
}

}  // namespace

std::shared_ptr<const Tokenizer> Tokenizer::from_dir(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  std::ifstream in(path);
  if (!in) throw TokenizerError(path + ": cannot open (the model directory needs its tokenizer.json)");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_text(ss.str(), path);
}

std::shared_ptr<const Tokenizer> Tokenizer::from_json_text(const std::string& text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw TokenizerError(where + ": not valid JSON (" + e.what() + ")");
  }
  try {
    return std::shared_ptr<const Tokenizer>(new Tokenizer(j, where));
  } catch (const TokenizerError& e) {
    throw TokenizerError(std::string(e.what()).rfind(where, 0) == 0 ? e.what() : where + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw TokenizerError(where + ": unexpected structure (" + e.what() + ")");
  }
}

Tokenizer::Tokenizer(const nlohmann::json& j, const std::string& where)
    : normalizer_(normal_form(j.value("normalizer", nlohmann::json()), where)),
      added_(j.value("added_tokens", nlohmann::json::array())),
      pre_(j.value("pre_tokenizer", nlohmann::json())),
      model_(j.at("model")) {
  // Post-processor: only TemplateProcessing changes ids; ByteLevel only touches offsets.
  std::vector<nlohmann::json> procs;
  const nlohmann::json post = j.value("post_processor", nlohmann::json());
  if (!post.is_null()) {
    if (post.value("type", "") == "Sequence") for (const auto& p : post.at("processors")) procs.push_back(p);
    else procs.push_back(post);
  }
  for (const auto& p : procs) {
    const std::string type = p.value("type", "");
    if (type == "ByteLevel") continue;
    if (type != "TemplateProcessing")
      throw TokenizerError("post-processor \"" + type + "\" is not supported (ByteLevel, TemplateProcessing)");
    bool after_sequence = false;
    for (const auto& piece : p.at("single")) {
      if (piece.contains("Sequence")) {
        after_sequence = true;
        continue;
      }
      const std::string name = piece.at("SpecialToken").at("id").get<std::string>();
      for (const auto& id : p.at("special_tokens").at(name).at("ids"))
        (after_sequence ? single_suffix_ : single_prefix_).push_back(id.get<int>());
    }
  }
  const nlohmann::json dec = j.value("decoder", nlohmann::json());
  if (!dec.is_null()) {
    const std::string type = dec.value("type", "");
    if (type != "ByteLevel")
      throw TokenizerError("decoder \"" + type + "\" is not supported (ByteLevel)");
  }
}

std::string Tokenizer::normalize(std::string_view text) const {
  if (normalizer_.empty()) return std::string(text);
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* n = normalizer_ == "NFC"    ? icu::Normalizer2::getNFCInstance(err)
                              : normalizer_ == "NFD"  ? icu::Normalizer2::getNFDInstance(err)
                              : normalizer_ == "NFKC" ? icu::Normalizer2::getNFKCInstance(err)
                                                      : icu::Normalizer2::getNFKDInstance(err);
  if (U_FAILURE(err)) throw TokenizerError("ICU has no " + normalizer_ + " normalizer");
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), text.size()));
  const icu::UnicodeString out = n->normalize(in, err);
  if (U_FAILURE(err)) throw TokenizerError("Unicode normalization failed");
  std::string s;
  out.toUTF8String(s);
  return s;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<TextSegment> segs = added_.split({TextSegment{std::string(text), -1}}, /*normalized=*/false);
  for (TextSegment& s : segs)
    if (s.added_id < 0) s.text = normalize(s.text);
  segs = added_.split(segs, /*normalized=*/true);
  std::vector<int> ids;
  if (add_special_tokens) ids = single_prefix_;
  for (const TextSegment& s : segs) {
    if (s.added_id >= 0) {
      ids.push_back(s.added_id);
      continue;
    }
    for (const std::string& piece : pre_.split(s.text))
      for (int id : model_.encode(piece)) ids.push_back(id);
  }
  if (add_special_tokens) ids.insert(ids.end(), single_suffix_.begin(), single_suffix_.end());
  return ids;
}

void Tokenizer::append_bytes(int id, bool skip_special_tokens, std::string& bytes) const {
  const std::string* token = nullptr;
  if (const AddedToken* a = added_.by_id(id)) {
    if (skip_special_tokens && a->special) return;
    token = &a->content;
  } else {
    token = model_.id_to_token(id);
    if (!token) return;  // no token for this id (an embedding row past the vocabulary)
  }
  if (!byte_level_decoder_ || !byte_level_to_bytes(*token, bytes)) bytes += *token;
}

std::string Tokenizer::decode(const std::vector<int>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int id : ids) append_bytes(id, skip_special_tokens, bytes);
  return utf8_lossy(bytes);
}

std::optional<int> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* a = added_.by_content(token)) return a->id;
  return model_.token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int id) const {
  if (const AddedToken* a = added_.by_id(id)) return a->content;
  if (const std::string* t = model_.id_to_token(id)) return *t;
  return std::nullopt;
}

bool Tokenizer::is_special(int id) const {
  const AddedToken* a = added_.by_id(id);
  return a && a->special;
}

int Tokenizer::vocab_size() const { return std::max(model_.max_id(), added_.max_id()) + 1; }

}  // namespace lockstep
