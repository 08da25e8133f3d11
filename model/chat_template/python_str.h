// Python's str whitespace rules on UTF-8 text, as the Jinja templates' strip(), lstrip(),
// rstrip(), split() and the trim filter apply them in transformers: whitespace is every code point
// str.isspace() accepts (ASCII's six, \x1c-\x1f, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000), and `chars` is a set of code points, not of bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lockstep {

bool is_python_space(char32_t c);

// s.strip(chars) / lstrip / rstrip; chars null: whitespace.
std::string python_strip(const std::string& s, bool left, bool right, const std::string* chars = nullptr);

// s.split() with no separator: runs of whitespace split, no empty parts; at most maxsplit
// splits (negative: any), the rest kept whole from its first non-whitespace on.
std::vector<std::string> python_split_whitespace(const std::string& s, std::int64_t maxsplit = -1);

}  // namespace lockstep
