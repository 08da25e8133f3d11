// Python's str rules on UTF-8 text, as chat templates meet them in transformers' jinja2: the
// whitespace of strip(), lstrip(), rstrip(), split() and the trim filter (every code point
// str.isspace() accepts: ASCII's six, \x1c-\x1f, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000; `chars` is a set of code points, not of bytes), case
// mappings, rsplit(), splitlines(), the is*() predicates and repr().
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

// Case mappings as Python's str methods do them (full Unicode mappings: 'ß'.upper() is "SS"):
// upper(), lower(), swapcase(), capitalize() (first character title-cased, the rest lowered)
// and title() (a cased character after an uncased one title-cased, the others lowered).
std::string python_upper(const std::string& s);
std::string python_lower(const std::string& s);
std::string python_swapcase(const std::string& s);
std::string python_capitalize(const std::string& s);
std::string python_title(const std::string& s);
// Jinja's title filter (not str.title()): each run between separators ('-', '(', '{', '[', '<'
// and whitespace) gets its first character upper-cased and the rest lowered.
std::string jinja_title(const std::string& s);

// s.rsplit(sep, maxsplit) (sep null: whitespace) and s.splitlines(): lines end at \n, \r, \r\n,
// \v, \f, \x1c-\x1e, U+0085, U+2028 and U+2029.
std::vector<std::string> python_rsplit(const std::string& s, const std::string* sep, std::int64_t maxsplit = -1);
std::vector<std::string> python_splitlines(const std::string& s);

// str.isdigit(), isalpha(), isalnum(), isspace(), isupper(), islower() (false for "").
bool python_is(const std::string& s, const std::string& which);

// repr(s): quoted as Python quotes it ('...' unless the text has ' and no "), with \\, the quote,
// \n \r \t and every non-printable character (Unicode's Other and Separator classes but the
// ASCII space) escaped as \xhh, \uhhhh or \Uhhhhhhhh.
std::string python_repr(const std::string& s);

// How many runs of word characters (\w in Python's re: alphanumerics and '_') s holds: Jinja's
// wordcount filter.
std::int64_t python_word_count(const std::string& s);

// The index of a byte offset in code points (what str.find() returns).
std::int64_t code_point_index(const std::string& s, std::size_t byte_offset);

}  // namespace lockstep
