// decode_python_escapes (see python_escapes.h).
#include "model/chat_template/python_escapes.h"

#include <stdexcept>

#include "model/tokenizer/byte_level.h"

namespace lockstep {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string decode_python_escapes(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (i + 1 == s.size()) throw std::runtime_error("a backslash at the end");
    const char c = s[++i];
    switch (c) {
      case '\n': break;  // a backslash before a newline joins the lines
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x':
      case 'u':
      case 'U': {
        const std::size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        unsigned long cp = 0;
        for (std::size_t k = 0; k < digits; ++k) {
          const int h = i + 1 + k < s.size() ? hex_value(s[i + 1 + k]) : -1;
          if (h < 0)
            throw std::runtime_error(std::string("a truncated \\") + c + " escape at byte " + std::to_string(i - 1) +
                                     " (it takes " + std::to_string(digits) + " hex digits)");
          cp = cp * 16 + static_cast<unsigned long>(h);
        }
        if (cp > 0x10FFFF) throw std::runtime_error("\\U escape past U+10FFFF at byte " + std::to_string(i - 1));
        append_utf8(out, static_cast<char32_t>(cp));
        i += digits;
        break;
      }
      case 'N': throw std::runtime_error("\\N{...} named escapes are not supported; write the character itself");
      default:
        if (c >= '0' && c <= '7') {  // up to three octal digits
          unsigned long cp = static_cast<unsigned long>(c - '0');
          for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k)
            cp = cp * 8 + static_cast<unsigned long>(s[++i] - '0');
          append_utf8(out, static_cast<char32_t>(cp));
        } else {  // not an escape: both characters stay
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

}  // namespace lockstep
