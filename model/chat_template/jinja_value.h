// Values of the Jinja subset chat templates use, with Python's semantics where templates can
// see them: truthiness, equality across int/float/bool, str() and repr() text, dicts that keep
// insertion order (so `tools | tojson` prints keys in the order the client sent them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lockstep::jinja {

// A template error: syntax (with line), a raise_exception() call, or a runtime type error.
struct TemplateError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Value;
using ValueList = std::vector<Value>;

class Dict {
 public:
  const Value* find(const std::string& key) const;
  Value* find(const std::string& key);
  void set(const std::string& key, Value v);
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  std::size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// Arguments of a call: positional, then keyword.
struct CallArgs {
  ValueList positional;
  std::vector<std::pair<std::string, Value>> keyword;
  const Value* kw(const std::string& name) const;
  // Positional i, else keyword `name`, else nullptr.
  const Value* arg(std::size_t i, const std::string& name) const;
};
using Function = std::function<Value(const CallArgs&)>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() = default;  // undefined
  static Value none();
  Value(bool b);
  Value(std::int64_t i);
  Value(int i) : Value(static_cast<std::int64_t>(i)) {}
  Value(double f);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  Value(ValueList list);
  static Value dict(Dict d = {}, bool is_namespace = false);
  static Value function(Function f);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_namespace() const { return kind_ == Kind::Dict && namespace_; }
  bool is_function() const { return kind_ == Kind::Function; }

  bool as_bool() const { return b_; }
  std::int64_t as_int() const;   // int, bool or float (truncated)
  double as_float() const;
  const std::string& as_string() const;
  const ValueList& as_list() const;
  ValueList& as_list();
  const Dict& as_dict() const;
  Dict& as_dict();
  const Function& as_function() const;

  bool truthy() const;
  std::string str() const;   // Python str(); undefined prints as ""
  std::string repr() const;  // Python repr()
  std::string type_name() const;
  // Python json.dumps(self, ensure_ascii=False, indent=indent, separators=..., sort_keys=...).
  std::string to_json(int indent = -1, const std::string& item_sep = "", const std::string& key_sep = "",
                      bool sort_keys = false) const;

  friend bool operator==(const Value& a, const Value& b);

 private:
  Kind kind_ = Kind::Undefined;
  bool b_ = false;
  std::int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<std::string> s_;
  std::shared_ptr<ValueList> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> fn_;
  bool namespace_ = false;
};

// Python's repr() of a float ("1.0", "0.1", "1e+16").
std::string python_float_repr(double f);

}  // namespace lockstep::jinja
