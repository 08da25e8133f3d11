// The operations templates apply to values: attribute and item access (with the string and
// dict methods), slicing, operators with Python semantics, Jinja's filters and tests.
#pragma once

#include <string>

#include "model/chat_template/jinja_value.h"

namespace lockstep::jinja {

Value get_attribute(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
Value binary_op(const std::string& op, const Value& a, const Value& b);
Value apply_filter(const std::string& name, const Value& v, const CallArgs& args);
bool apply_test(const std::string& name, const Value& v, const CallArgs& args);
// A string's characters (code points), each as a one-character string.
ValueList utf8_chars(const std::string& s);

}  // namespace lockstep::jinja
