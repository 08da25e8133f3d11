// Renders chat-template cases with lockstep's ChatTemplate, for fuzz_chat_templates.sh: each stdin
// line {"dir", "messages", "tools", "add_generation_prompt", "extra"} gives one stdout line, the
// rendered text as a JSON string, or {"error": true} where the template raises.
#include <exception>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "model/chat_template/chat_template.h"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    const auto c = nlohmann::ordered_json::parse(line);
    try {
      const auto t = lockstep::ChatTemplate::from_dir(c.at("dir").get<std::string>());
      const std::string text = t.render(c.at("messages"), c.value("tools", nlohmann::ordered_json()),
                                        c.value("add_generation_prompt", false),
                                        c.value("extra", nlohmann::ordered_json::object()));
      std::cout << nlohmann::json(text).dump() << "\n";
    } catch (const std::exception&) {
      std::cout << "{\"error\": true}\n";
    }
  }
}
