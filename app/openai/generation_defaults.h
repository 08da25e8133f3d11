// Default sampling parameters from the model's generation_config.json, as vLLM takes them
// (--generation-config auto, its default): the values of repetition_penalty, temperature,
// top_k, top_p, min_p and max_new_tokens (as max_tokens) that differ from transformers'
// GenerationConfig defaults, then --override-generation-config on top. A request's own fields
// win; absent ones take these before the OpenAI defaults (DeepSeek-R1's distills ship
// temperature 0.6 / top_p 0.95). --generation-config vllm ignores the file; a directory reads
// that directory's generation_config.json instead of the model's.
#pragma once

#include <optional>
#include <string>

namespace lockstep {

struct GenerationDefaults {
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k, max_tokens;

  bool empty() const {
    return !temperature && !top_p && !min_p && !repetition_penalty && !top_k && !max_tokens;
  }
  std::string describe() const;  // "temperature 0.6, top_p 0.95" (what is set)

  // From generation_config.json's text (nullopt: no file) and --override-generation-config's
  // JSON object (empty: none). Throws std::runtime_error naming `where` on malformed input.
  static GenerationDefaults from_json(const std::optional<std::string>& generation_config,
                                      const std::string& override_json, const std::string& where);
  // --generation-config: "auto" (MODEL_DIR's file), "vllm" (none) or a directory.
  static GenerationDefaults load(const std::string& mode, const std::string& model_dir,
                                 const std::string& override_json);
};

}  // namespace lockstep
