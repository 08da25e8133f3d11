// chat_template_from_option (see chat_template_option.h).
#include "model/chat_template/chat_template_option.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "model/chat_template/python_escapes.h"

namespace lockstep {

std::string chat_template_from_option(const std::string& value) {
  std::error_code ec;
  if (std::filesystem::is_directory(value, ec))
    throw std::runtime_error("--chat-template " + value + ": is a directory; give the template's file");
  std::ifstream in(value);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in.bad()) return ss.str();
  }
  const int open_errno = errno;
  if (value.find_first_of("{}\n") == std::string::npos)
    throw std::runtime_error("--chat-template " + value + ": looks like a file path, but it cannot be opened (" +
                             std::strerror(open_errno) + ")");
  try {
    return decode_python_escapes(value);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("--chat-template: the template's escapes do not decode: ") + e.what());
  }
}

}  // namespace lockstep
