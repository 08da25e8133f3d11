// Parses a Jinja template into statements, applying Jinja's whitespace rules the way
// transformers configures its environment: trim_blocks and lstrip_blocks on, `-` strips
// whitespace, `+` keeps it. Syntax errors are TemplateErrors naming the line.
#pragma once

#include <string>

#include "model/chat_template/jinja_ast.h"

namespace lockstep::jinja {

StmtList parse_template(const std::string& source);

}  // namespace lockstep::jinja
