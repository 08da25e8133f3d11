// Filters, tests, methods and operators (see jinja_builtins.h).
#include "model/chat_template/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "model/chat_template/python_str.h"

namespace lockstep::jinja {
namespace {

std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  if (!chars || chars->is_none() || chars->is_undefined()) return python_strip(s, left, right);
  const std::string set = chars->as_string();
  return python_strip(s, left, right, &set);
}

Value split(const std::string& s, const Value* sep, const Value* maxsplit_v) {
  const std::int64_t maxsplit = maxsplit_v && !maxsplit_v->is_none() ? maxsplit_v->as_int() : -1;
  ValueList out;
  if (!sep || sep->is_none()) {  // runs of whitespace, no empty parts
    for (std::string& part : python_split_whitespace(s, maxsplit)) out.push_back(Value(std::move(part)));
    return Value(std::move(out));
  }
  const std::string& d = sep->as_string();
  if (d.empty()) throw TemplateError("split(): empty separator");
  std::size_t at = 0;
  std::int64_t splits = 0;
  for (std::size_t k; (maxsplit < 0 || splits < maxsplit) && (k = s.find(d, at)) != std::string::npos; ++splits) {
    out.push_back(Value(s.substr(at, k - at)));
    at = k + d.size();
  }
  out.push_back(Value(s.substr(at)));
  return Value(std::move(out));
}

std::string replace_all(std::string s, const std::string& from, const std::string& to, std::int64_t count) {
  if (from.empty()) return s;
  std::size_t at = 0;
  for (std::int64_t n = 0; (count < 0 || n < count) && (at = s.find(from, at)) != std::string::npos; ++n) {
    s.replace(at, from.size(), to);
    at += to.size();
  }
  return s;
}

bool starts_or_ends(const std::string& s, const Value& what, bool start) {
  auto one = [&](const std::string& p) {
    return p.size() <= s.size() && (start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0);
  };
  if (what.is_list()) {
    for (const Value& p : what.as_list()) if (one(p.as_string())) return true;
    return false;
  }
  return one(what.as_string());
}

Value string_method(const std::string& s, const std::string& name) {
  return Value::function([s, name](const CallArgs& a) -> Value {
    if (name == "strip") return Value(strip(s, a.arg(0, "chars"), true, true));
    if (name == "lstrip") return Value(strip(s, a.arg(0, "chars"), true, false));
    if (name == "rstrip") return Value(strip(s, a.arg(0, "chars"), false, true));
    if (name == "split") return split(s, a.arg(0, "sep"), a.arg(1, "maxsplit"));
    if (name == "startswith") return Value(starts_or_ends(s, *a.arg(0, "prefix"), true));
    if (name == "endswith") return Value(starts_or_ends(s, *a.arg(0, "suffix"), false));
    if (name == "replace")
      return Value(replace_all(s, a.arg(0, "old")->as_string(), a.arg(1, "new")->as_string(),
                               a.arg(2, "count") ? a.arg(2, "count")->as_int() : -1));
    if (name == "lower") return Value(python_lower(s));
    if (name == "upper") return Value(python_upper(s));
    if (name == "capitalize") return Value(python_capitalize(s));
    if (name == "title") return Value(python_title(s));
    if (name == "swapcase") return Value(python_swapcase(s));
    if (name == "rsplit") {
      const Value* sep = a.arg(0, "sep");
      const Value* maxsplit = a.arg(1, "maxsplit");
      const std::string d = sep && !sep->is_none() ? sep->as_string() : std::string();
      ValueList out;
      for (std::string& part : python_rsplit(s, sep && !sep->is_none() ? &d : nullptr,
                                             maxsplit && !maxsplit->is_none() ? maxsplit->as_int() : -1))
        out.push_back(Value(std::move(part)));
      return Value(std::move(out));
    }
    if (name == "splitlines") {
      ValueList out;
      for (std::string& line : python_splitlines(s)) out.push_back(Value(std::move(line)));
      return Value(std::move(out));
    }
    if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "isupper" ||
        name == "islower")
      return Value(python_is(s, name));
    if (name == "format") {  // positional fields: {} and {0}; {{ and }} for braces
      std::string out;
      std::size_t next = 0;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if ((s[i] == '{' || s[i] == '}') && i + 1 < s.size() && s[i + 1] == s[i]) {
          out += s[i++];
        } else if (s[i] == '{') {
          const std::size_t close = s.find('}', i);
          if (close == std::string::npos) throw TemplateError("format(): a '{' without '}'");
          const std::string field = s.substr(i + 1, close - i - 1);
          const std::size_t index = field.empty() ? next++ : static_cast<std::size_t>(std::stoll(field));
          const Value* v = a.arg(index, "");
          if (!v) throw TemplateError("format(): no argument " + std::to_string(index));
          out += v->str();
          i = close;
        } else {
          out += s[i];
        }
      }
      return Value(out);
    }
    if (name == "find") {
      const auto k = s.find(a.arg(0, "sub")->as_string());
      return Value(k == std::string::npos ? std::int64_t{-1} : code_point_index(s, k));
    }
    if (name == "count") {
      const std::string sub = a.arg(0, "sub")->as_string();
      std::int64_t n = 0;
      if (!sub.empty())
        for (std::size_t k = s.find(sub); k != std::string::npos; k = s.find(sub, k + sub.size())) ++n;
      return Value(n);
    }
    if (name == "join") {
      std::string out;
      bool first = true;
      for (const Value& v : a.arg(0, "iterable")->as_list()) {
        if (!first) out += s;
        out += v.as_string();
        first = false;
      }
      return Value(out);
    }
    throw TemplateError("strings have no method '" + name + "'");
  });
}

Value dict_method(const Value& d, const std::string& name) {
  return Value::function([d, name](const CallArgs& a) -> Value {
    const Dict& dict = d.as_dict();
    if (name == "items") {
      ValueList l;
      for (const auto& [k, v] : dict.items()) l.push_back(Value(ValueList{Value(k), v}));
      return Value(std::move(l));
    }
    if (name == "keys" || name == "values") {
      ValueList l;
      for (const auto& [k, v] : dict.items()) l.push_back(name == "keys" ? Value(k) : v);
      return Value(std::move(l));
    }
    // get
    const Value* v = dict.find(a.arg(0, "key")->str());
    if (v) return *v;
    return a.arg(1, "default") ? *a.arg(1, "default") : Value::none();
  });
}

std::int64_t normalize_index(std::int64_t i, std::size_t n) { return i < 0 ? i + static_cast<std::int64_t>(n) : i; }

int compare_values(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_float() < b.as_float() ? -1 : a.as_float() > b.as_float() ? 1 : 0;
  if (a.kind() == Value::Kind::Bool || b.kind() == Value::Kind::Bool) return compare_values(Value(a.as_int()), Value(b.as_int()));
  if (a.is_string() && b.is_string()) return a.as_string().compare(b.as_string()) < 0 ? -1 : a.as_string() == b.as_string() ? 0 : 1;
  throw TemplateError("cannot compare " + a.type_name() + " with " + b.type_name());
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) return container.as_string().find(item.as_string()) != std::string::npos;
  if (container.is_list()) {
    for (const Value& v : container.as_list()) if (v == item) return true;
    return false;
  }
  if (container.is_dict()) return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
  if (container.is_undefined() || container.is_none()) throw TemplateError("'in' on an undefined value");
  throw TemplateError("'in' needs a string, list or dict, not " + container.type_name());
}

}  // namespace

ValueList utf8_chars(const std::string& s) {
  ValueList out;
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char b = s[i];
    const std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
    out.push_back(Value(s.substr(i, n)));
    i += n;
  }
  return out;
}

Value get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_dict()) {
    if (!obj.is_namespace() && (name == "items" || name == "keys" || name == "values" || name == "get"))
      return dict_method(obj, name);
    const Value* v = obj.as_dict().find(name);
    return v ? *v : Value();
  }
  if (obj.is_string()) return string_method(obj.as_string(), name);
  if (obj.is_list() && !name.empty() && std::isdigit(static_cast<unsigned char>(name[0])))
    return get_item(obj, Value(static_cast<std::int64_t>(std::stoll(name))));
  return Value();
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_dict()) {
    const Value* v = obj.as_dict().find(key.str());
    return v ? *v : Value();
  }
  if (obj.is_list() || obj.is_string()) {
    const ValueList chars = obj.is_string() ? utf8_chars(obj.as_string()) : ValueList{};
    const ValueList& l = obj.is_list() ? obj.as_list() : chars;
    if (!key.is_number() && key.kind() != Value::Kind::Bool) return Value();
    const std::int64_t i = normalize_index(key.as_int(), l.size());
    if (i < 0 || i >= static_cast<std::int64_t>(l.size())) return Value();
    return l[static_cast<std::size_t>(i)];
  }
  if (obj.is_none()) throw TemplateError("cannot index None");
  return Value();
}

Value slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  const ValueList chars = obj.is_string() ? utf8_chars(obj.as_string()) : ValueList{};
  if (!obj.is_string() && !obj.is_list()) throw TemplateError("cannot slice " + obj.type_name());
  const ValueList& l = obj.is_list() ? obj.as_list() : chars;
  const auto n = static_cast<std::int64_t>(l.size());
  const std::int64_t step = step_v.is_none() ? 1 : step_v.as_int();
  if (step == 0) throw TemplateError("slice step cannot be zero");
  auto clamp = [&](const Value& v, std::int64_t def, bool is_stop) {
    if (v.is_none()) return def;
    std::int64_t i = v.as_int();
    if (i < 0) i += n;
    if (step > 0) return std::clamp<std::int64_t>(i, 0, n);
    return std::clamp<std::int64_t>(i, -1, n - 1);
    (void)is_stop;
  };
  const std::int64_t start = clamp(start_v, step > 0 ? 0 : n - 1, false);
  const std::int64_t stop = clamp(stop_v, step > 0 ? n : -1, true);
  ValueList out;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(l[static_cast<std::size_t>(i)]);
  if (obj.is_list()) return Value(std::move(out));
  std::string s;
  for (const Value& c : out) s += c.as_string();
  return Value(s);
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return Value(a == b);
  if (op == "!=") return Value(!(a == b));
  if (op == "<") return Value(compare_values(a, b) < 0);
  if (op == ">") return Value(compare_values(a, b) > 0);
  if (op == "<=") return Value(compare_values(a, b) <= 0);
  if (op == ">=") return Value(compare_values(a, b) >= 0);
  if (op == "in") return Value(contains(b, a));
  if (op == "not in") return Value(!contains(b, a));
  if (op == "~") return Value(a.str() + b.str());
  if (op == "+") {
    if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
    if (a.is_list() && b.is_list()) {
      ValueList l = a.as_list();
      l.insert(l.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(l));
    }
    if (a.is_number() && b.is_number()) {
      if (a.kind() == Value::Kind::Int && b.kind() == Value::Kind::Int) return Value(a.as_int() + b.as_int());
      return Value(a.as_float() + b.as_float());
    }
    throw TemplateError("cannot add " + a.type_name() + " and " + b.type_name());
  }
  if (op == "*" && a.is_string() && b.kind() == Value::Kind::Int) {
    std::string s;
    for (std::int64_t i = 0; i < b.as_int(); ++i) s += a.as_string();
    return Value(s);
  }
  if (op == "*" && a.is_list() && b.kind() == Value::Kind::Int) {  // [0] * 2
    ValueList l;
    for (std::int64_t i = 0; i < b.as_int(); ++i) l.insert(l.end(), a.as_list().begin(), a.as_list().end());
    return Value(std::move(l));
  }
  if (!a.is_number() || !b.is_number())
    throw TemplateError("'" + op + "' needs numbers, got " + a.type_name() + " and " + b.type_name());
  const bool ints = a.kind() == Value::Kind::Int && b.kind() == Value::Kind::Int;
  if (op == "-") return ints ? Value(a.as_int() - b.as_int()) : Value(a.as_float() - b.as_float());
  if (op == "*") return ints ? Value(a.as_int() * b.as_int()) : Value(a.as_float() * b.as_float());
  if (op == "/") {
    if (b.as_float() == 0) throw TemplateError("division by zero");
    return Value(a.as_float() / b.as_float());
  }
  if (op == "//" || op == "%") {
    if (b.as_float() == 0) throw TemplateError("division by zero");
    if (ints) {
      const std::int64_t x = a.as_int(), y = b.as_int();
      std::int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;  // Python floors
      return op == "//" ? Value(q) : Value(x - q * y);
    }
    const double q = std::floor(a.as_float() / b.as_float());
    return op == "//" ? Value(q) : Value(a.as_float() - q * b.as_float());
  }
  if (op == "**") return ints && b.as_int() >= 0 ? Value(static_cast<std::int64_t>(std::llround(std::pow(a.as_float(), b.as_float()))))
                                                 : Value(std::pow(a.as_float(), b.as_float()));
  throw TemplateError("unknown operator " + op);
}

Value apply_filter(const std::string& name, const Value& v, const CallArgs& a) {
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value(static_cast<std::int64_t>(utf8_chars(v.as_string()).size()));
    if (v.is_list()) return Value(static_cast<std::int64_t>(v.as_list().size()));
    if (v.is_dict()) return Value(static_cast<std::int64_t>(v.as_dict().size()));
    throw TemplateError("length of " + v.type_name());
  }
  if (name == "trim") return Value(strip(v.str(), a.arg(0, "chars"), true, true));
  if (name == "tojson") {
    const Value* indent = a.arg(0, "indent");
    const Value* seps = a.kw("separators");
    std::string item_sep, key_sep;
    if (seps && seps->is_list() && seps->as_list().size() == 2) {
      item_sep = seps->as_list()[0].as_string();
      key_sep = seps->as_list()[1].as_string();
    }
    const Value* sort_keys = a.kw("sort_keys");
    return Value(v.to_json(indent && !indent->is_none() ? static_cast<int>(indent->as_int()) : -1, item_sep, key_sep,
                           sort_keys && sort_keys->truthy()));
  }
  if (name == "string") return Value(v.str());
  if (name == "int") {
    if (v.is_string()) {
      try { return Value(static_cast<std::int64_t>(std::stoll(v.as_string()))); } catch (...) { return Value(std::int64_t{0}); }
    }
    return Value(v.is_number() ? v.as_int() : std::int64_t{0});
  }
  if (name == "float") {
    if (v.is_string()) {
      try { return Value(std::stod(v.as_string())); } catch (...) { return Value(0.0); }
    }
    return Value(v.is_number() ? v.as_float() : 0.0);
  }
  if (name == "lower") return Value(python_lower(v.str()));
  if (name == "upper") return Value(python_upper(v.str()));
  if (name == "capitalize") return Value(python_capitalize(v.str()));
  if (name == "title") return Value(jinja_title(v.str()));
  if (name == "wordcount") return Value(python_word_count(v.str()));  // Jinja: the matches of \w+
  if (name == "batch") {  // lists of `linecount` items; the last filled with fill_with when given
    const std::int64_t n = a.arg(0, "linecount")->as_int();
    if (n <= 0) throw TemplateError("batch(): the count must be positive");
    const Value* fill = a.arg(1, "fill_with");
    ValueList out, row;
    for (const Value& x : v.as_list()) {
      row.push_back(x);
      if (static_cast<std::int64_t>(row.size()) == n) out.push_back(Value(std::move(row))), row = {};
    }
    if (!row.empty()) {
      if (fill && !fill->is_none())
        while (static_cast<std::int64_t>(row.size()) < n) row.push_back(*fill);
      out.push_back(Value(std::move(row)));
    }
    return Value(std::move(out));
  }
  if (name == "center") {  // Python's str.center(width), spaces
    const std::string text = v.str();
    const std::int64_t width = a.arg(0, "width") ? a.arg(0, "width")->as_int() : 80;
    const std::int64_t len = code_point_index(text, text.size());
    if (width <= len) return Value(text);
    const std::int64_t pad = width - len, left = pad / 2 + (pad & width & 1);
    return Value(std::string(static_cast<std::size_t>(left), ' ') + text +
                 std::string(static_cast<std::size_t>(pad - left), ' '));
  }
  if (name == "join") {
    const std::string sep = a.arg(0, "d") ? a.arg(0, "d")->str() : "";
    const Value* attr = a.arg(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& x : v.is_list() ? v.as_list() : ValueList{}) {
      if (!first) out += sep;
      out += attr ? get_attribute(x, attr->str()).str() : x.str();
      first = false;
    }
    return Value(out);
  }
  if (name == "first" || name == "last") {
    const ValueList l = v.is_string() ? utf8_chars(v.as_string()) : v.as_list();
    if (l.empty()) return Value();
    return name == "first" ? l.front() : l.back();
  }
  if (name == "list") {
    if (v.is_list()) return v;
    if (v.is_string()) return Value(utf8_chars(v.as_string()));
    if (v.is_dict()) return dict_method(v, "keys").as_function()({});
    throw TemplateError("list() of " + v.type_name());
  }
  if (name == "reverse") {
    if (v.is_string()) return slice(v, Value::none(), Value::none(), Value(std::int64_t{-1}));
    ValueList l = v.as_list();
    std::reverse(l.begin(), l.end());
    return Value(std::move(l));
  }
  if (name == "replace")
    return Value(replace_all(v.str(), a.arg(0, "old")->str(), a.arg(1, "new")->str(),
                             a.arg(2, "count") ? a.arg(2, "count")->as_int() : -1));
  if (name == "items") return dict_method(v, "items").as_function()({});
  if (name == "map" || name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    ValueList out;
    const ValueList in = v.is_list() ? v.as_list() : ValueList{};
    for (const Value& x : in) {
      if (name == "map") {
        if (const Value* attr = a.kw("attribute")) {
          Value r = get_attribute(x, attr->str());
          if (r.is_undefined() && a.kw("default")) r = *a.kw("default");
          out.push_back(r);
        } else {
          CallArgs rest;
          rest.positional.assign(a.positional.begin() + 1, a.positional.end());
          rest.keyword = a.keyword;
          out.push_back(apply_filter(a.positional.at(0).as_string(), x, rest));
        }
        continue;
      }
      const bool by_attr = name == "selectattr" || name == "rejectattr";
      const Value subject = by_attr ? get_attribute(x, a.positional.at(0).as_string()) : x;
      const std::size_t test_at = by_attr ? 1 : 0;
      bool ok;
      if (a.positional.size() > test_at) {
        CallArgs rest;
        rest.positional.assign(a.positional.begin() + test_at + 1, a.positional.end());
        ok = apply_test(a.positional[test_at].as_string(), subject, rest);
      } else {
        ok = subject.truthy();
      }
      if (ok == (name == "select" || name == "selectattr")) out.push_back(x);
    }
    return Value(std::move(out));
  }
  if (name == "unique") {
    ValueList out;
    for (const Value& x : v.as_list())
      if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
    return Value(std::move(out));
  }
  if (name == "sort") {
    ValueList l = v.as_list();
    const Value* attr = a.kw("attribute");
    const bool reverse = a.arg(0, "reverse") && a.arg(0, "reverse")->truthy();
    std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
      const Value kx = attr ? get_attribute(x, attr->str()) : x, ky = attr ? get_attribute(y, attr->str()) : y;
      return reverse ? compare_values(ky, kx) < 0 : compare_values(kx, ky) < 0;
    });
    return Value(std::move(l));
  }
  if (name == "abs") return v.kind() == Value::Kind::Float ? Value(std::fabs(v.as_float())) : Value(static_cast<std::int64_t>(std::llabs(v.as_int())));
  if (name == "round") {
    const std::int64_t digits = a.arg(0, "precision") ? a.arg(0, "precision")->as_int() : 0;
    const double p = std::pow(10.0, static_cast<double>(digits));
    return Value(std::nearbyint(v.as_float() * p) / p);
  }
  if (name == "safe") return v;
  if (name == "e" || name == "escape") {
    std::string out;
    for (char c : v.str()) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value(out);
  }
  if (name == "indent") {
    const std::int64_t width = a.arg(0, "width") ? a.arg(0, "width")->as_int() : 4;
    const bool first = a.arg(1, "first") && a.arg(1, "first")->truthy();
    const std::string pad(static_cast<std::size_t>(width), ' ');
    std::string s = v.str(), out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      out += s[i];
      if (s[i] == '\n' && i + 1 < s.size() && s[i + 1] != '\n') out += pad;
    }
    return Value(first ? pad + out : out);
  }
  if (name == "sum" || name == "min" || name == "max") {
    const ValueList& l = v.as_list();
    if (name == "sum") {
      Value acc(std::int64_t{0});
      for (const Value& x : l) acc = binary_op("+", acc, x);
      return acc;
    }
    if (l.empty()) return Value();
    Value best = l[0];
    for (const Value& x : l)
      if (name == "min" ? compare_values(x, best) < 0 : compare_values(x, best) > 0) best = x;
    return best;
  }
  if (name == "dictsort") {
    auto items = v.as_dict().items();
    std::stable_sort(items.begin(), items.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    ValueList l;
    for (const auto& [k, x] : items) l.push_back(Value(ValueList{Value(k), x}));
    return Value(std::move(l));
  }
  throw TemplateError("unknown filter '" + name + "'");
}

bool apply_test(const std::string& name, const Value& v, const CallArgs& a) {
  using K = Value::Kind;
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.kind() == K::Int || v.kind() == K::Float;
  if (name == "integer") return v.kind() == K::Int;
  if (name == "float") return v.kind() == K::Float;
  if (name == "boolean") return v.kind() == K::Bool;
  if (name == "true") return v.kind() == K::Bool && v.as_bool();
  if (name == "false") return v.kind() == K::Bool && !v.as_bool();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "sequence") return v.is_list() || v.is_string() || v.is_dict();
  if (name == "callable") return v.is_function();
  if (name == "even" || name == "odd") return (v.as_int() % 2 == 0) == (name == "even");
  if (name == "divisibleby") return v.as_int() % a.positional.at(0).as_int() == 0;
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return v == a.positional.at(0);
  if (name == "ne" || name == "!=") return !(v == a.positional.at(0));
  if (name == "lt") return binary_op("<", v, a.positional.at(0)).truthy();
  if (name == "le") return binary_op("<=", v, a.positional.at(0)).truthy();
  if (name == "gt") return binary_op(">", v, a.positional.at(0)).truthy();
  if (name == "ge") return binary_op(">=", v, a.positional.at(0)).truthy();
  if (name == "in") return binary_op("in", v, a.positional.at(0)).truthy();
  if (name == "lower") return python_is(v.str(), "islower");
  if (name == "upper") return python_is(v.str(), "isupper");
  throw TemplateError("unknown test '" + name + "'");
}

}  // namespace lockstep::jinja
