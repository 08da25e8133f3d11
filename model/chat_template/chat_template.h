// A checkpoint's chat template, rendered the way transformers' apply_chat_template renders it
// (tokenize=False): the template from tokenizer_config.json's "chat_template" (a string, or a
// list of named templates: "default"), or from chat_template.jinja as newer saves write it;
// variables messages, tools, documents, add_generation_prompt, the special tokens (bos_token,
// eos_token, ...) and any extra keyword arguments (enable_thinking, date_string, ...).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "model/chat_template/jinja_template.h"

namespace lockstep {

using ChatTemplateError = jinja::TemplateError;

class ChatTemplate {
 public:
  // Throws ChatTemplateError when the directory has no template or it does not parse.
  // source_override (--chat-template): this template instead of the directory's, with the
  // directory's special tokens.
  static ChatTemplate from_dir(const std::string& dir, const std::string& source_override = {});
  // `config` is a tokenizer_config.json object (its special tokens are used).
  static ChatTemplate from_source(const std::string& source, const nlohmann::ordered_json& config = {});

  // Throws ChatTemplateError for a template error or a raise_exception() in the template.
  // continue_final_message: the text ends right after the last message's content (its
  // end-of-turn tokens cut), as transformers' apply_chat_template(continue_final_message=True),
  // so that the model continues that message; ChatTemplateError when its text is not in the
  // rendering.
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools = nullptr,
                     bool add_generation_prompt = false,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object(),
                     bool continue_final_message = false) const;

  // True when the template opens a <think> block for the model (DeepSeek-R1 and its distills).
  bool opens_think_block() const;
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::shared_ptr<jinja::Template> template_;
  jinja::Dict special_tokens_;
};

}  // namespace lockstep
