// Python's str rules on UTF-8 text (see python_str.h).
#include "model/chat_template/python_str.h"

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

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

namespace {

enum class Case { Upper, Lower, Title };

// The full case mapping of one code point (one or more code points, UTF-8).
std::string map_case(char32_t c, Case to) {
  icu::UnicodeString u(static_cast<UChar32>(c));
  if (to == Case::Upper) u.toUpper(icu::Locale::getRoot());
  else if (to == Case::Lower) u.toLower(icu::Locale::getRoot());
  else u.toTitle(nullptr, icu::Locale::getRoot(), U_TITLECASE_NO_LOWERCASE | U_TITLECASE_NO_BREAK_ADJUSTMENT);
  std::string out;
  u.toUTF8String(out);
  return out;
}

bool is_cased(char32_t c) { return u_isupper(c) || u_islower(c) || u_istitle(c); }

bool is_digit(char32_t c) { return u_isdigit(c) || u_getIntPropertyValue(c, UCHAR_NUMERIC_TYPE) == U_NT_DIGIT; }

// str.isalnum() of one character: a letter or anything with a numeric value.
bool is_alnum(char32_t c) { return u_isalpha(c) || u_getIntPropertyValue(c, UCHAR_NUMERIC_TYPE) != U_NT_NONE; }

}  // namespace

std::string python_upper(const std::string& s) {
  std::string out;
  icu::UnicodeString::fromUTF8(s).toUpper(icu::Locale::getRoot()).toUTF8String(out);
  return out;
}

std::string python_lower(const std::string& s) {
  std::string out;
  icu::UnicodeString::fromUTF8(s).toLower(icu::Locale::getRoot()).toUTF8String(out);
  return out;
}

std::string python_swapcase(const std::string& s) {
  std::string out;
  for (std::size_t i = 0, len; i < s.size(); i += len) {
    const char32_t c = code_point_at(s, i, len);
    if (u_isupper(c)) out += map_case(c, Case::Lower);
    else if (u_islower(c)) out += map_case(c, Case::Upper);
    else out.append(s, i, len);
  }
  return out;
}

std::string python_capitalize(const std::string& s) {
  if (s.empty()) return s;
  std::size_t len = 0;
  const char32_t c = code_point_at(s, 0, len);
  return map_case(c, Case::Title) + python_lower(s.substr(len));
}

std::string python_title(const std::string& s) {
  std::string out;
  bool previous_cased = false;
  for (std::size_t i = 0, len; i < s.size(); i += len) {
    const char32_t c = code_point_at(s, i, len);
    if (is_cased(c)) {
      out += map_case(c, previous_cased ? Case::Lower : Case::Title);
      previous_cased = true;
    } else {
      out.append(s, i, len);
      previous_cased = false;
    }
  }
  return out;
}

std::string jinja_title(const std::string& s) {
  std::string out;
  bool word_start = true;
  for (std::size_t i = 0, len; i < s.size(); i += len) {
    const char32_t c = code_point_at(s, i, len);
    if (c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_python_space(c)) {
      out.append(s, i, len);
      word_start = true;
    } else {
      out += map_case(c, word_start ? Case::Upper : Case::Lower);
      word_start = false;
    }
  }
  return out;
}

std::vector<std::string> python_rsplit(const std::string& s, const std::string* sep, std::int64_t maxsplit) {
  std::vector<std::string> out;
  if (!sep) {  // whitespace runs, from the right
    std::size_t e = s.size();
    for (std::int64_t splits = 0;;) {
      while (e > 0) {  // skip trailing whitespace
        std::size_t len = 0;
        const std::size_t at = start_before(s, e);
        if (!is_python_space(code_point_at(s, at, len))) break;
        e = at;
      }
      if (e == 0) break;
      if (maxsplit >= 0 && splits == maxsplit) {
        out.push_back(s.substr(0, e));
        break;
      }
      std::size_t b = e;
      while (b > 0) {
        std::size_t len = 0;
        const std::size_t at = start_before(s, b);
        if (is_python_space(code_point_at(s, at, len))) break;
        b = at;
      }
      out.push_back(s.substr(b, e - b));
      ++splits;
      e = b;
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  if (sep->empty()) throw std::runtime_error("rsplit(): empty separator");
  std::size_t end = s.size();
  for (std::int64_t splits = 0; maxsplit < 0 || splits < maxsplit; ++splits) {
    if (end < sep->size()) break;
    const std::size_t k = s.rfind(*sep, end - sep->size());
    if (k == std::string::npos) break;
    out.push_back(s.substr(k + sep->size(), end - k - sep->size()));
    end = k;
  }
  out.push_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> python_splitlines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t begin = 0, i = 0, len = 0;
  while (i < s.size()) {
    const char32_t c = code_point_at(s, i, len);
    const bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
                     c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) {
      i += len;
      continue;
    }
    out.push_back(s.substr(begin, i - begin));
    i += len;
    if (c == '\r' && i < s.size() && s[i] == '\n') ++i;
    begin = i;
  }
  if (begin < s.size()) out.push_back(s.substr(begin));
  return out;
}

bool python_is(const std::string& s, const std::string& which) {
  if (s.empty()) return false;
  bool any_cased = false;
  for (std::size_t i = 0, len; i < s.size(); i += len) {
    const char32_t c = code_point_at(s, i, len);
    if (which == "isdigit" && !is_digit(c)) return false;
    if (which == "isalpha" && !u_isalpha(c)) return false;
    if (which == "isalnum" && !is_alnum(c)) return false;
    if (which == "isspace" && !is_python_space(c)) return false;
    if (which == "isupper" && (u_islower(c) || u_istitle(c))) return false;
    if (which == "islower" && (u_isupper(c) || u_istitle(c))) return false;
    any_cased = any_cased || is_cased(c);
  }
  return which == "isupper" || which == "islower" ? any_cased : true;
}

std::string python_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  const char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (std::size_t i = 0, len; i < s.size(); i += len) {
    const char32_t c = code_point_at(s, i, len);
    bool printable = c == ' ';
    if (!printable) switch (u_charType(static_cast<UChar32>(c))) {
        case U_CONTROL_CHAR: case U_FORMAT_CHAR: case U_SURROGATE: case U_PRIVATE_USE_CHAR: case U_UNASSIGNED:
        case U_LINE_SEPARATOR: case U_PARAGRAPH_SEPARATOR: case U_SPACE_SEPARATOR: break;
        default: printable = true;
      }
    if (c == '\\' || c == static_cast<char32_t>(q)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!printable) {
      char b[16];
      std::snprintf(b, sizeof b, c < 0x100 ? "\\x%02x" : c < 0x10000 ? "\\u%04x" : "\\U%08x", static_cast<unsigned>(c));
      out += b;
    } else {
      out.append(s, i, len);
    }
  }
  return out + q;
}

std::int64_t python_word_count(const std::string& s) {
  std::int64_t words = 0;
  bool in_word = false;
  for (std::size_t i = 0, len; i < s.size(); i += len) {
    const char32_t c = code_point_at(s, i, len);
    const bool word = c == '_' || is_alnum(c);
    words += word && !in_word;
    in_word = word;
  }
  return words;
}

std::int64_t code_point_index(const std::string& s, std::size_t byte_offset) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < byte_offset && i < s.size(); ++i) n += (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
  return n;
}

}  // namespace lockstep
