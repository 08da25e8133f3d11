// GenerationDefaults (see generation_defaults.h).
#include "app/openai/generation_defaults.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace lockstep {
namespace {

using nlohmann::json;

json parse_object(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(where + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw std::runtime_error(where + ": not a JSON object");
  return j;
}

// transformers' GenerationConfig defaults for the keys vLLM takes: a file value equal to one is
// not in to_diff_dict(), so it changes nothing.
bool is_transformers_default(const std::string& key, const json& v) {
  if (v.is_null()) return true;
  if (!v.is_number()) return false;  // kept: reported below if it is one of ours
  if (key == "temperature" || key == "top_p" || key == "repetition_penalty") return v.get<double>() == 1.0;
  if (key == "top_k") return v.get<double>() == 50;
  return false;  // min_p, max_new_tokens: default None
}

}  // namespace

std::string GenerationDefaults::describe() const {
  std::ostringstream os;
  const char* sep = "";
  auto item = [&](const char* name, const auto& v) {
    if (v) os << sep << name << " " << *v, sep = ", ";
  };
  item("repetition_penalty", repetition_penalty);
  item("temperature", temperature);
  item("top_k", top_k);
  item("top_p", top_p);
  item("min_p", min_p);
  item("max_tokens", max_tokens);
  return os.str();
}

GenerationDefaults GenerationDefaults::from_json(const std::optional<std::string>& generation_config,
                                                 const std::string& override_json, const std::string& where) {
  json merged = json::object();
  if (generation_config) {
    const json file = parse_object(*generation_config, where);
    for (auto it = file.begin(); it != file.end(); ++it)
      if (!is_transformers_default(it.key(), it.value())) merged[it.key()] = it.value();
  }
  if (!override_json.empty()) {
    const json over = parse_object(override_json, "--override-generation-config");
    for (auto it = over.begin(); it != over.end(); ++it) merged[it.key()] = it.value();
  }
  GenerationDefaults d;
  auto number = [&](const char* key) -> std::optional<double> {
    if (!merged.contains(key) || merged[key].is_null()) return std::nullopt;
    if (!merged[key].is_number())
      throw std::runtime_error(where + ": \"" + key + "\" is not a number (" + merged[key].dump() + ")");
    return merged[key].get<double>();
  };
  if (auto v = number("temperature")) d.temperature = static_cast<float>(*v);
  if (auto v = number("top_p")) d.top_p = static_cast<float>(*v);
  if (auto v = number("min_p")) d.min_p = static_cast<float>(*v);
  if (auto v = number("repetition_penalty")) d.repetition_penalty = static_cast<float>(*v);
  if (auto v = number("top_k")) d.top_k = *v > 0 ? static_cast<int>(*v) : -1;  // 0 or less: off
  if (auto v = number("max_new_tokens")) d.max_tokens = static_cast<int>(*v);
  if (auto v = number("max_tokens")) d.max_tokens = static_cast<int>(*v);  // an override may use vLLM's name
  return d;
}

GenerationDefaults GenerationDefaults::load(const std::string& mode, const std::string& model_dir,
                                            const std::string& override_json) {
  std::optional<std::string> text;
  std::string path;
  if (mode != "vllm") {
    path = (mode == "auto" ? model_dir : mode) + "/generation_config.json";
    std::ifstream in(path);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    } else if (mode != "auto") {
      throw std::runtime_error("--generation-config " + mode + ": cannot open " + path);
    }
  }
  return from_json(text, override_json, path.empty() ? "generation config" : path);
}

}  // namespace lockstep
