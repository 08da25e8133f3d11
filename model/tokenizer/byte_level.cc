// Byte-level alphabet and UTF-8 helpers (see byte_level.h).
#include "model/tokenizer/byte_level.h"

#include <array>
#include <cstdint>
#include <unordered_map>

namespace lockstep {
namespace {

struct Tables {
  std::array<std::string, 256> byte_to_char;
  std::unordered_map<char32_t, std::uint8_t> char_to_byte;
  Tables() {
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      append_utf8(byte_to_char[b], c);
      char_to_byte[c] = static_cast<std::uint8_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

// Decodes one UTF-8 character at s[i]; returns its length, or 0 if invalid.
std::size_t decode_one(std::string_view s, std::size_t i, char32_t& c) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 < 0x80) { c = b0; return 1; }
  if (b0 >= 0xC2 && b0 <= 0xDF) { len = 2; c = b0 & 0x1F; }
  else if (b0 >= 0xE0 && b0 <= 0xEF) { len = 3; c = b0 & 0x0F; if (b0 == 0xE0) lo = 0xA0; if (b0 == 0xED) hi = 0x9F; }
  else if (b0 >= 0xF0 && b0 <= 0xF4) { len = 4; c = b0 & 0x07; if (b0 == 0xF0) lo = 0x90; if (b0 == 0xF4) hi = 0x8F; }
  else return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if (i + k >= s.size()) return 0;
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return 0;
    c = (c << 6) | (b & 0x3F);
  }
  return len;
}

// Bytes of the maximal valid prefix of a (broken) sequence starting at s[i]: at least 1.
std::size_t invalid_run(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) { len = 3; if (b0 == 0xE0) lo = 0xA0; if (b0 == 0xED) hi = 0x9F; }
  else if (b0 >= 0xF0 && b0 <= 0xF4) { len = 4; if (b0 == 0xF0) lo = 0x90; if (b0 == 0xF4) hi = 0x8F; }
  else return 1;
  std::size_t k = 1;
  for (; k < len && i + k < s.size(); ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) break;
  }
  return k;
}

}  // namespace

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string bytes_to_byte_level(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) out += tables().byte_to_char[b];
  return out;
}

bool byte_level_to_bytes(std::string_view token, std::string& out) {
  std::string bytes;
  for (std::size_t i = 0; i < token.size();) {
    char32_t c = 0;
    const std::size_t n = decode_one(token, i, c);
    if (n == 0) return false;
    const auto it = tables().char_to_byte.find(c);
    if (it == tables().char_to_byte.end()) return false;
    bytes += static_cast<char>(it->second);
    i += n;
  }
  out += bytes;
  return true;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t c = 0;
    const std::size_t n = decode_one(s, i, c);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += invalid_run(s, i);
    }
  }
  return out;
}

std::size_t complete_utf8_prefix(std::string_view s) {
  std::size_t i = 0, good = 0;
  while (i < s.size()) {
    char32_t c = 0;
    const std::size_t n = decode_one(s, i, c);
    if (n == 0) {
      // An incomplete character at the very end waits for more bytes; anything else is invalid
      // for good and counts as complete (it decodes to U+FFFD).
      if (i + invalid_run(s, i) >= s.size()) return good;
      i += invalid_run(s, i);
    } else {
      i += n;
    }
    good = i;
  }
  return good;
}

}  // namespace lockstep
