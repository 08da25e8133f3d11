// Value (see jinja_value.h).
#include "model/chat_template/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "model/chat_template/python_str.h"

namespace lockstep::jinja {

const Value* Dict::find(const std::string& key) const {
  for (const auto& [k, v] : items_)
    if (k == key) return &v;
  return nullptr;
}
Value* Dict::find(const std::string& key) {
  for (auto& [k, v] : items_)
    if (k == key) return &v;
  return nullptr;
}
void Dict::set(const std::string& key, Value v) {
  if (Value* existing = find(key)) *existing = std::move(v);
  else items_.emplace_back(key, std::move(v));
}

const Value* CallArgs::kw(const std::string& name) const {
  for (const auto& [k, v] : keyword)
    if (k == name) return &v;
  return nullptr;
}
const Value* CallArgs::arg(std::size_t i, const std::string& name) const {
  if (i < positional.size()) return &positional[i];
  return kw(name);
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}
Value::Value(bool b) : kind_(Kind::Bool), b_(b) {}
Value::Value(std::int64_t i) : kind_(Kind::Int), i_(i) {}
Value::Value(double f) : kind_(Kind::Float), f_(f) {}
Value::Value(std::string s) : kind_(Kind::String), s_(std::make_shared<std::string>(std::move(s))) {}
Value::Value(ValueList list) : kind_(Kind::List), list_(std::make_shared<ValueList>(std::move(list))) {}
Value Value::dict(Dict d, bool is_namespace) {
  Value v;
  v.kind_ = Kind::Dict;
  v.dict_ = std::make_shared<Dict>(std::move(d));
  v.namespace_ = is_namespace;
  return v;
}
Value Value::function(Function f) {
  Value v;
  v.kind_ = Kind::Function;
  v.fn_ = std::make_shared<Function>(std::move(f));
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned: return Value(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList l;
      for (const auto& x : j) l.push_back(from_json(x));
      return Value(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [k, x] : j.items()) d.set(k, from_json(x));
      return dict(std::move(d));
    }
    default: return Value();
  }
}

std::int64_t Value::as_int() const {
  if (kind_ == Kind::Int) return i_;
  if (kind_ == Kind::Bool) return b_;
  if (kind_ == Kind::Float) return static_cast<std::int64_t>(f_);
  throw TemplateError("expected a number, got " + type_name());
}
double Value::as_float() const {
  if (kind_ == Kind::Float) return f_;
  return static_cast<double>(as_int());
}
const std::string& Value::as_string() const {
  if (kind_ != Kind::String) throw TemplateError("expected a string, got " + type_name());
  return *s_;
}
const ValueList& Value::as_list() const {
  if (kind_ != Kind::List) throw TemplateError("expected a list, got " + type_name());
  return *list_;
}
ValueList& Value::as_list() {
  if (kind_ != Kind::List) throw TemplateError("expected a list, got " + type_name());
  return *list_;
}
const Dict& Value::as_dict() const {
  if (kind_ != Kind::Dict) throw TemplateError("expected a dict, got " + type_name());
  return *dict_;
}
Dict& Value::as_dict() {
  if (kind_ != Kind::Dict) throw TemplateError("expected a dict, got " + type_name());
  return *dict_;
}
const Function& Value::as_function() const {
  if (kind_ != Kind::Function) throw TemplateError(type_name() + " is not callable");
  return *fn_;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return b_;
    case Kind::Int: return i_ != 0;
    case Kind::Float: return f_ != 0;
    case Kind::String: return !s_->empty();
    case Kind::List: return !list_->empty();
    case Kind::Dict: return dict_->size() != 0;
    case Kind::Function: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "undefined";
    case Kind::None: return "none";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "string";
    case Kind::List: return "list";
    case Kind::Dict: return namespace_ ? "namespace" : "dict";
    case Kind::Function: return "function";
  }
  return "?";
}

std::string python_float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0) return std::signbit(f) ? "-0.0" : "0.0";
  // Shortest significant digits that read back as f (what Python's repr picks).
  char buf[48];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  std::string sci = buf;  // [-]d.ddde[+-]XX
  const bool neg = sci[0] == '-';
  if (neg) sci = sci.substr(1);
  const auto epos = sci.find('e');
  std::string digits = sci.substr(0, 1) + (epos > 2 ? sci.substr(2, epos - 2) : "");
  const int exp10 = std::stoi(sci.substr(epos + 1));
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp10 >= -4 && exp10 < 16) {  // fixed notation
    if (exp10 >= 0) {
      if (static_cast<int>(digits.size()) <= exp10 + 1) {
        out = digits + std::string(exp10 + 1 - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, exp10 + 1) + "." + digits.substr(exp10 + 1);
      }
    } else {
      out = "0." + std::string(-exp10 - 1, '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += e;
  }
  return neg ? "-" + out : out;
}

namespace {


void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out += b; }
        else out += static_cast<char>(c);
    }
  }
  out += '"';
}

void to_json_impl(const Value& v, int indent, int depth, const std::string& item_sep, const std::string& key_sep,
                  bool sort_keys, std::string& out) {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<std::size_t>(indent * d), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None: out += "null"; break;
    case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Value::Kind::Int: out += std::to_string(v.as_int()); break;
    case Value::Kind::Float: {
      const double f = v.as_float();
      out += std::isnan(f) ? "NaN" : std::isinf(f) ? (f > 0 ? "Infinity" : "-Infinity") : python_float_repr(f);
      break;
    }
    case Value::Kind::String: json_string(v.as_string(), out); break;
    case Value::Kind::List: {
      const auto& l = v.as_list();
      if (l.empty()) { out += "[]"; break; }
      out += '[';
      for (std::size_t i = 0; i < l.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        to_json_impl(l[i], indent, depth + 1, item_sep, key_sep, sort_keys, out);
      }
      newline(depth);
      out += ']';
      break;
    }
    case Value::Kind::Dict: {
      auto items = v.as_dict().items();
      if (items.empty()) { out += "{}"; break; }
      if (sort_keys) std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        json_string(items[i].first, out);
        out += key_sep;
        to_json_impl(items[i].second, indent, depth + 1, item_sep, key_sep, sort_keys, out);
      }
      newline(depth);
      out += '}';
      break;
    }
    case Value::Kind::Function: throw TemplateError("a function is not JSON serializable");
  }
}

}  // namespace

std::string Value::to_json(int indent, const std::string& item_sep, const std::string& key_sep, bool sort_keys) const {
  std::string out;
  const std::string is = item_sep.empty() ? (indent >= 0 ? "," : ", ") : item_sep;
  const std::string ks = key_sep.empty() ? ": " : key_sep;
  to_json_impl(*this, indent, 0, is, ks, sort_keys, out);
  return out;
}

std::string Value::str() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return b_ ? "True" : "False";
    case Kind::Int: return std::to_string(i_);
    case Kind::Float: return python_float_repr(f_);
    case Kind::String: return *s_;
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::String: return python_repr(*s_);
    case Kind::List: {
      std::string out = "[";
      for (std::size_t i = 0; i < list_->size(); ++i) out += (i ? ", " : "") + (*list_)[i].repr();
      return out + "]";
    }
    case Kind::Dict: {
      std::string out = namespace_ ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, v] : dict_->items()) {
        out += (first ? "" : ", ") + python_repr(k) + ": " + v.repr();
        first = false;
      }
      return out + (namespace_ ? "}>" : "}");
    }
    case Kind::Function: return "<function>";
    default: return str();
  }
}

bool operator==(const Value& a, const Value& b) {
  using K = Value::Kind;
  const bool an = a.kind_ == K::Int || a.kind_ == K::Float || a.kind_ == K::Bool;
  const bool bn = b.kind_ == K::Int || b.kind_ == K::Float || b.kind_ == K::Bool;
  if (an && bn) return a.as_float() == b.as_float();
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case K::Undefined:
    case K::None: return true;
    case K::String: return *a.s_ == *b.s_;
    case K::List: return *a.list_ == *b.list_;
    case K::Dict: {
      if (a.dict_->size() != b.dict_->size()) return false;
      for (const auto& [k, v] : a.dict_->items()) {
        const Value* o = b.dict_->find(k);
        if (!o || !(*o == v)) return false;
      }
      return true;
    }
    case K::Function: return a.fn_ == b.fn_;
    default: return false;
  }
}

}  // namespace lockstep::jinja
