// render_chat_prompt, the chat request's prompt text, as vLLM builds it: content given as text
// parts is joined by newlines; continue_final_message ends the text inside the last message (and
// cannot come with add_generation_prompt); bad content is a 400.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "app/openai/api_error.h"
#include "app/openai/openai_request.h"

namespace lockstep {
namespace {

using json = nlohmann::ordered_json;

ModelContext model_with(const std::string& chat_template) {
  ModelContext m;
  m.tokenizer = Tokenizer::from_dir(std::string(LOCKSTEP_FIXTURES_DIR) + "/llama-tiny");
  m.chat_template = std::make_shared<const ChatTemplate>(ChatTemplate::from_source(chat_template));
  return m;
}

// A template that trims contents (as Llama 3's does) and ends each turn with <end>.
const char* kTemplate =
    "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}<end>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}";

TEST(ChatPrompt, TextPartsJoinWithNewlinesAsVllm) {
  const ModelContext m = model_with(kTemplate);
  const json body = json::parse(R"({"messages": [{"role": "user", "content": [
      {"type": "text", "text": "first"}, {"type": "text", "text": "second"}]}]})");
  EXPECT_EQ(render_chat_prompt(body, m), "<user>first\nsecond<end><assistant>");
  const json image = json::parse(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})");
  EXPECT_THROW(render_chat_prompt(image, m), ApiError);
}

TEST(ChatPrompt, ContinueFinalMessageEndsInsideIt) {
  const ModelContext m = model_with(kTemplate);
  json body = json::parse(R"({"messages": [{"role": "user", "content": "Count"},
      {"role": "assistant", "content": "One, two,"}], "add_generation_prompt": false, "continue_final_message": true})");
  EXPECT_EQ(render_chat_prompt(body, m), "<user>Count<end><assistant>One, two,");
  // The template trimmed the trailing space: the text ends after what it kept.
  body["messages"][1]["content"] = "One, two, ";
  EXPECT_EQ(render_chat_prompt(body, m), "<user>Count<end><assistant>One, two,");
  // Not with add_generation_prompt (vLLM's default is true, so it must be turned off).
  body.erase("add_generation_prompt");
  try {
    render_chat_prompt(body, m);
    ADD_FAILURE() << "both set should be a 400";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "continue_final_message");
  }
  // A template that drops the final message's text: nothing to continue, a 400.
  const ModelContext drops = model_with("{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}");
  body["add_generation_prompt"] = false;
  body["messages"][1]["content"] = "never rendered";
  EXPECT_THROW(render_chat_prompt(body, drops), ApiError);
}

}  // namespace
}  // namespace lockstep
