// The value of --chat-template, as vLLM reads it: the path of a file holding a Jinja chat
// template, or the template itself on the command line, its backslash escapes (\n, \t, \", \\,
// \xhh, \uXXXX, ...) decoded as Python's "unicode_escape" codec does. A value that is neither an
// openable file nor looks like a template (no '{', '}' or newline) is a path that failed to open.
// Unlike vLLM, non-ASCII text in a command-line template stays as written (vLLM's codec reads
// its UTF-8 bytes as Latin-1).
#pragma once

#include <string>

namespace lockstep {

// The template's source text. Throws std::runtime_error naming the flag and the reason.
std::string chat_template_from_option(const std::string& value);

}  // namespace lockstep
