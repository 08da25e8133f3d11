// Python's "unicode_escape" decoding, which Jinja applies to its string literals and vLLM to a
// --chat-template given on the command line: \n, \t, \\, \', \", \a \b \f \r \v, \ooo (octal),
// \xhh, \uXXXX, \UXXXXXXXX and a backslash before a newline (dropped); any other backslash stays
// with its character. Bytes >= 0x80 are kept as they are, as Jinja keeps non-ASCII text.
#pragma once

#include <string>

namespace lockstep {

// Throws std::runtime_error for a truncated \x, \u or \U escape, one past U+10FFFF, \N{...}
// (named escapes are not supported) or a trailing backslash.
std::string decode_python_escapes(const std::string& s);

}  // namespace lockstep
