// ChatTemplate (see chat_template.h).
#include "model/chat_template/chat_template.h"

#include <fstream>
#include <sstream>

#include "model/chat_template/python_str.h"

namespace lockstep {
namespace {

std::string read_file(const std::string& path, bool& ok) {
  std::ifstream in(path);
  ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

ChatTemplate ChatTemplate::from_source(const std::string& source, const nlohmann::ordered_json& config) {
  ChatTemplate t;
  t.source_ = source;
  t.template_ = std::make_shared<jinja::Template>(source);
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (!config.is_object() || !config.contains(key)) continue;
    const auto& v = config[key];
    if (v.is_string()) t.special_tokens_.set(key, jinja::Value(v.get<std::string>()));
    else if (v.is_object() && v.contains("content")) t.special_tokens_.set(key, jinja::Value(v["content"].get<std::string>()));
  }
  if (config.is_object() && config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array()) {
    jinja::ValueList extra;
    for (const auto& v : config["additional_special_tokens"])
      extra.push_back(jinja::Value(v.is_object() ? v.value("content", "") : v.get<std::string>()));
    t.special_tokens_.set("additional_special_tokens", jinja::Value(std::move(extra)));
  }
  return t;
}

ChatTemplate ChatTemplate::from_dir(const std::string& dir, const std::string& source_override) {
  bool ok = false;
  const std::string config_path = dir + "/tokenizer_config.json";
  const std::string config_text = read_file(config_path, ok);
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  if (ok) {
    try {
      config = nlohmann::ordered_json::parse(config_text);
    } catch (const nlohmann::json::exception& e) {
      throw ChatTemplateError(config_path + ": not valid JSON (" + e.what() + ")");
    }
  }
  std::string source = source_override;
  if (source.empty() && config.contains("chat_template") && config["chat_template"].is_string()) {
    source = config["chat_template"].get<std::string>();
  } else if (source.empty() && config.contains("chat_template") && config["chat_template"].is_array()) {
    for (const auto& named : config["chat_template"])
      if (named.value("name", "") == "default") source = named.value("template", "");
  }
  if (source.empty()) {
    bool jinja_ok = false;
    source = read_file(dir + "/chat_template.jinja", jinja_ok);
    if (!jinja_ok)
      throw ChatTemplateError(dir + ": no chat template (neither tokenizer_config.json's \"chat_template\" nor "
                                    "chat_template.jinja); use /v1/completions with a plain prompt");
  }
  return from_source(source, config);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                 bool add_generation_prompt, const nlohmann::ordered_json& extra,
                                 bool continue_final_message) const {
  jinja::Dict ctx = special_tokens_;
  ctx.set("messages", jinja::Value::from_json(messages));
  ctx.set("tools", jinja::Value::from_json(tools));
  ctx.set("documents", jinja::Value::none());
  ctx.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) ctx.set(k, jinja::Value::from_json(v));
  std::string rendered = template_->render(ctx);
  if (!continue_final_message) return rendered;
  // transformers: the final message's text (its last text part) is found from the end of the
  // rendering, and the rendering cut after it: after the whole text where the template kept it
  // as it is, else after its stripped text (the template trimmed it).
  std::string final_message;
  bool found = false;
  if (messages.is_array() && !messages.empty() && messages.back().is_object() && messages.back().contains("content")) {
    const auto& content = messages.back()["content"];
    if (content.is_string()) {
      final_message = content.get<std::string>(), found = true;
    } else if (content.is_array()) {
      for (auto it = content.rbegin(); it != content.rend() && !found; ++it)
        if (it->is_object() && it->contains("text") && (*it)["text"].is_string())
          final_message = (*it)["text"].get<std::string>(), found = true;
    }
  }
  if (!found)
    throw ChatTemplateError("continue_final_message is set but there is no text to continue in the final message");
  const std::string stripped = python_strip(final_message, true, true);
  const std::size_t at = rendered.rfind(stripped);
  if (at == std::string::npos)
    throw ChatTemplateError("continue_final_message is set but the final message does not appear in the chat after "
                            "applying the chat template (the template may drop or change it)");
  const std::size_t kept = python_strip(final_message, true, false).size();
  const bool as_is = rendered.compare(at, kept, final_message) == 0;
  rendered.resize(at + (as_is ? final_message.size() : stripped.size()));
  return rendered;
}

bool ChatTemplate::opens_think_block() const {
  return source_.find("<think>") != std::string::npos;
}

}  // namespace lockstep
