// GenerationDefaults: what vLLM's --generation-config auto takes from generation_config.json
// (values differing from transformers' GenerationConfig defaults, max_new_tokens as max_tokens),
// --override-generation-config on top, the vllm and directory modes, and clear errors.
#include "app/openai/generation_defaults.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace lockstep {
namespace {

TEST(GenerationDefaults, TakesWhatDiffersFromTransformersDefaults) {
  // DeepSeek-R1-Distill-Qwen-7B's generation_config.json.
  const GenerationDefaults r1 = GenerationDefaults::from_json(
      R"({"_from_model_config": true, "bos_token_id": 151646, "eos_token_id": 151643, "do_sample": true,
          "temperature": 0.6, "top_p": 0.95, "transformers_version": "4.39.3"})", "", "g.json");
  EXPECT_EQ(r1.temperature, 0.6f);
  EXPECT_EQ(r1.top_p, 0.95f);
  EXPECT_FALSE(r1.top_k || r1.min_p || r1.repetition_penalty || r1.max_tokens);
  EXPECT_EQ(r1.describe(), "temperature 0.6, top_p 0.95");
  // transformers' defaults (temperature 1, top_p 1, top_k 50, repetition_penalty 1) are not in its diff.
  const GenerationDefaults same = GenerationDefaults::from_json(
      R"({"temperature": 1.0, "top_p": 1.0, "top_k": 50, "repetition_penalty": 1.0, "min_p": null})", "", "g.json");
  EXPECT_TRUE(same.empty());
  // Qwen3's: top_k 20 differs; max_new_tokens is vLLM's max_tokens.
  const GenerationDefaults q = GenerationDefaults::from_json(
      R"({"temperature": 0.6, "top_k": 20, "top_p": 0.95, "min_p": 0.0, "max_new_tokens": 512})", "", "g.json");
  EXPECT_EQ(q.top_k, 20);
  EXPECT_EQ(q.min_p, 0.0f);
  EXPECT_EQ(q.max_tokens, 512);
}

TEST(GenerationDefaults, OverrideGoesOnTop) {
  const GenerationDefaults d = GenerationDefaults::from_json(R"({"temperature": 0.6, "top_p": 0.95})",
                                                             R"({"temperature": 0.2, "top_k": 0, "max_tokens": 7})", "g");
  EXPECT_EQ(d.temperature, 0.2f);
  EXPECT_EQ(d.top_p, 0.95f);
  EXPECT_EQ(d.top_k, -1);  // 0: off
  EXPECT_EQ(d.max_tokens, 7);
  EXPECT_EQ(GenerationDefaults::from_json(std::nullopt, R"({"temperature": 0})", "g").temperature, 0.0f);
}

TEST(GenerationDefaults, ClearErrors) {
  auto error = [](auto f) {
    try {
      f();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error([] { GenerationDefaults::from_json("{", "", "m/generation_config.json"); })
                .find("m/generation_config.json: not valid JSON"),
            std::string::npos);
  EXPECT_NE(error([] { GenerationDefaults::from_json(std::nullopt, "[1]", "g"); })
                .find("--override-generation-config: not a JSON object"),
            std::string::npos);
  EXPECT_NE(error([] { GenerationDefaults::from_json(R"({"temperature": "hot"})", "", "g"); })
                .find("\"temperature\" is not a number"),
            std::string::npos);
  EXPECT_NE(error([] { GenerationDefaults::load("/nonexistent-dir", "m", ""); })
                .find("--generation-config /nonexistent-dir: cannot open /nonexistent-dir/generation_config.json"),
            std::string::npos);
}

TEST(GenerationDefaults, LoadModes) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "lockstep_generation_defaults_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "generation_config.json") << R"({"temperature": 0.6})";
  EXPECT_EQ(GenerationDefaults::load("auto", dir.string(), "").temperature, 0.6f);
  EXPECT_TRUE(GenerationDefaults::load("vllm", dir.string(), "").empty());  // the file is ignored
  EXPECT_EQ(GenerationDefaults::load("vllm", dir.string(), R"({"top_p": 0.5})").top_p, 0.5f);
  EXPECT_EQ(GenerationDefaults::load(dir.string(), "/elsewhere", "").temperature, 0.6f);
  EXPECT_TRUE(GenerationDefaults::load("auto", "/nonexistent-model", "").empty());  // no file: nothing
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lockstep
