// Python str whitespace rules (see python_str.h).
#include "model/chat_template/python_str.h"

#include <algorithm>

namespace lockstep {
namespace {

// The code point starting at s[i] and its length in bytes (a stray byte stands for itself).
char32_t code_point_at(const std::string& s, std::size_t i, std::size_t& len) {
  const auto b = static_cast<unsigned char>(s[i]);
  len = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
  if (i + len > s.size()) len = 1;
  if (len == 1) return b;
  char32_t c = b & (0x3F >> (len - 1));
  for (std::size_t k = 1; k < len; ++k) c = c << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return c;
}

// Where the code point that ends at s[end - 1] starts.
std::size_t start_before(const std::string& s, std::size_t end) {
  std::size_t i = end - 1;
  for (int k = 0; k < 3 && i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80; ++k) --i;
  return i;
}

}  // namespace

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string python_strip(const std::string& s, bool left, bool right, const std::string* chars) {
  std::vector<char32_t> set;
  if (chars)
    for (std::size_t i = 0, len; i < chars->size(); i += len) set.push_back(code_point_at(*chars, i, len));
  auto drop = [&](char32_t c) { return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_python_space(c); };
  std::size_t b = 0, e = s.size(), len = 0;
  if (left)
    while (b < e && drop(code_point_at(s, b, len))) b += len;
  if (right)
    while (e > b) {
      const std::size_t at = std::max(start_before(s, e), b);
      if (!drop(code_point_at(s, at, len))) break;
      e = at;
    }
  return s.substr(b, e - b);
}

std::vector<std::string> python_split_whitespace(const std::string& s, std::int64_t maxsplit) {
  std::vector<std::string> out;
  std::size_t i = 0, len = 0;
  auto space_at = [&](std::size_t at) { return is_python_space(code_point_at(s, at, len)); };
  for (std::int64_t splits = 0; i < s.size();) {
    while (i < s.size() && space_at(i)) i += len;
    if (i >= s.size()) break;
    if (maxsplit >= 0 && splits == maxsplit) {
      out.push_back(s.substr(i));  // as it is, trailing whitespace too
      break;
    }
    std::size_t j = i;
    while (j < s.size() && !space_at(j)) j += len;
    out.push_back(s.substr(i, j - i));
    ++splits;
    i = j;
  }
  return out;
}

}  // namespace lockstep
