// Template rendering: statements and expressions (see jinja_template.h). Filters, tests and
// methods live in jinja_builtins.cc.
#include "model/chat_template/jinja_template.h"

#include <cmath>
#include <ctime>

#include "model/chat_template/jinja_builtins.h"
#include "model/chat_template/jinja_parser.h"

namespace lockstep::jinja {
namespace {

enum class Flow { Normal, Break, Continue };

class Renderer {
 public:
  explicit Renderer(const Dict& context) {
    scopes_.push_back(globals());
    scopes_.push_back(context);
  }

  Flow exec(const StmtList& body, std::string& out) {
    for (const auto& s : body) {
      const Flow f = exec(*s, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

 private:
  Dict globals() {
    Dict g;
    g.set("raise_exception", Value::function([](const CallArgs& a) -> Value {
      throw TemplateError(a.positional.empty() ? "raise_exception() called" : a.positional[0].str());
    }));
    g.set("strftime_now", Value::function([](const CallArgs& a) -> Value {
      const std::time_t t = std::time(nullptr);
      std::tm tm{};
      localtime_r(&t, &tm);
      char buf[256];
      const std::string fmt = a.positional.empty() ? "%Y-%m-%d" : a.positional[0].as_string();
      std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
      return Value(std::string(buf));
    }));
    g.set("namespace", Value::function([](const CallArgs& a) {
      Dict d;
      if (!a.positional.empty() && a.positional[0].is_dict()) d = a.positional[0].as_dict();
      for (const auto& [k, v] : a.keyword) d.set(k, v);
      return Value::dict(std::move(d), /*is_namespace=*/true);
    }));
    g.set("dict", Value::function([](const CallArgs& a) {
      Dict d;
      for (const auto& [k, v] : a.keyword) d.set(k, v);
      return Value::dict(std::move(d));
    }));
    g.set("range", Value::function([](const CallArgs& a) {
      std::int64_t start = 0, stop = 0, step = 1;
      if (a.positional.size() == 1) stop = a.positional[0].as_int();
      else if (a.positional.size() >= 2) { start = a.positional[0].as_int(); stop = a.positional[1].as_int(); }
      if (a.positional.size() == 3) step = a.positional[2].as_int();
      if (step == 0) throw TemplateError("range() step must not be zero");
      ValueList l;
      for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) l.push_back(Value(i));
      return Value(std::move(l));
    }));
    return g;
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
      if (const Value* v = it->find(name)) return *v;
    return Value();
  }
  void assign(const std::string& name, Value v) { scopes_.back().set(name, std::move(v)); }

  Flow exec(const Stmt& s, std::string& out) {
    try {
      switch (s.kind) {
        case Stmt::Kind::Text: out += s.text; return Flow::Normal;
        case Stmt::Kind::Output: out += eval(*s.expr).str(); return Flow::Normal;
        case Stmt::Kind::If:
          for (const auto& [cond, body] : s.branches)
            if (!cond || eval(*cond).truthy()) return exec(body, out);
          return Flow::Normal;
        case Stmt::Kind::For: return exec_for(s, out);
        case Stmt::Kind::Set: {
          Value v = eval(*s.expr);
          if (s.target_attr) {
            Value ns = eval(*s.target_attr);
            if (!ns.is_namespace()) throw TemplateError("can only set attributes of a namespace() object");
            ns.as_dict().set(s.attr, std::move(v));
          } else if (s.targets.size() == 1) {
            assign(s.targets[0], std::move(v));
          } else {
            const ValueList items = iterate(v);
            if (items.size() != s.targets.size()) throw TemplateError("cannot unpack into " + std::to_string(s.targets.size()) + " names");
            for (std::size_t i = 0; i < items.size(); ++i) assign(s.targets[i], items[i]);
          }
          return Flow::Normal;
        }
        case Stmt::Kind::SetBlock: {
          std::string captured;
          exec(s.body, captured);
          assign(s.targets[0], Value(captured));
          return Flow::Normal;
        }
        case Stmt::Kind::Macro: {
          const Stmt* macro = &s;
          assign(s.name, Value::function([this, macro](const CallArgs& a) {
            Dict locals;
            for (std::size_t i = 0; i < macro->params.size(); ++i) {
              const auto& [name, def] = macro->params[i];
              if (const Value* v = a.arg(i, name)) locals.set(name, *v);
              else locals.set(name, def ? eval(*def) : Value());
            }
            scopes_.push_back(std::move(locals));
            std::string body;
            exec(macro->body, body);
            scopes_.pop_back();
            return Value(body);
          }));
          return Flow::Normal;
        }
        case Stmt::Kind::Break: return Flow::Break;
        case Stmt::Kind::Continue: return Flow::Continue;
      }
    } catch (const TemplateError& e) {
      const std::string msg = e.what();
      if (msg.rfind("chat template", 0) == 0) throw;
      throw TemplateError("chat template error at line " + std::to_string(s.line) + ": " + msg);
    }
    return Flow::Normal;
  }

  ValueList iterate(const Value& v) const {
    if (v.is_list()) return v.as_list();
    if (v.is_dict()) {
      ValueList keys;
      for (const auto& [k, x] : v.as_dict().items()) keys.push_back(Value(k));
      return keys;
    }
    if (v.is_string()) return utf8_chars(v.as_string());
    if (v.is_undefined() || v.is_none()) return {};
    throw TemplateError("cannot iterate over " + v.type_name());
  }

  Flow exec_for(const Stmt& s, std::string& out) {
    ValueList items = iterate(eval(*s.expr));
    if (s.filter) {
      ValueList kept;
      for (const Value& item : items) {
        scopes_.emplace_back();
        bind_targets(s, item);
        if (eval(*s.filter).truthy()) kept.push_back(item);
        scopes_.pop_back();
      }
      items.swap(kept);
    }
    if (items.empty()) return exec_scoped(s.else_body, out);
    const auto n = static_cast<std::int64_t>(items.size());
    for (std::int64_t i = 0; i < n; ++i) {
      Dict loop;
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(n - i));
      loop.set("revindex0", Value(n - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == n - 1));
      loop.set("length", Value(n));
      loop.set("previtem", i > 0 ? items[i - 1] : Value());
      loop.set("nextitem", i + 1 < n ? items[i + 1] : Value());
      loop.set("cycle", Value::function([i](const CallArgs& a) {
        if (a.positional.empty()) throw TemplateError("loop.cycle() needs arguments");
        return a.positional[static_cast<std::size_t>(i) % a.positional.size()];
      }));
      scopes_.emplace_back();
      scopes_.back().set("loop", Value::dict(std::move(loop)));
      bind_targets(s, items[i]);
      const Flow f = exec(s.body, out);
      scopes_.pop_back();
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  Flow exec_scoped(const StmtList& body, std::string& out) {
    scopes_.emplace_back();
    const Flow f = exec(body, out);
    scopes_.pop_back();
    return f;
  }

  void bind_targets(const Stmt& s, const Value& item) {
    if (s.targets.size() == 1) {
      assign(s.targets[0], item);
      return;
    }
    const ValueList parts = iterate(item);
    if (parts.size() != s.targets.size()) throw TemplateError("cannot unpack loop item into " + std::to_string(s.targets.size()) + " names");
    for (std::size_t i = 0; i < parts.size(); ++i) assign(s.targets[i], parts[i]);
  }

  CallArgs eval_args(const std::vector<Arg>& args) {
    CallArgs out;
    for (const Arg& a : args) {
      if (a.name.empty()) out.positional.push_back(eval(*a.value));
      else out.keyword.emplace_back(a.name, eval(*a.value));
    }
    return out;
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Literal: return e.literal;
      case Expr::Kind::Name: return lookup(e.name);
      case Expr::Kind::List:
      case Expr::Kind::Tuple: {
        ValueList l;
        for (const auto& x : e.items) l.push_back(eval(*x));
        return Value(std::move(l));
      }
      case Expr::Kind::Dict: {
        Dict d;
        for (std::size_t i = 0; i + 1 < e.items.size(); i += 2) d.set(eval(*e.items[i]).str(), eval(*e.items[i + 1]));
        return Value::dict(std::move(d));
      }
      case Expr::Kind::Attribute: {
        const Value obj = eval(*e.a);
        if (obj.is_undefined()) throw TemplateError(describe(*e.a) + " is undefined (reading ." + e.name + ")");
        return get_attribute(obj, e.name);
      }
      case Expr::Kind::Subscript: {
        const Value obj = eval(*e.a);
        if (obj.is_undefined()) throw TemplateError(describe(*e.a) + " is undefined (indexing it)");
        return get_item(obj, eval(*e.b));
      }
      case Expr::Kind::Slice: {
        const Value obj = eval(*e.a);
        auto part = [&](const ExprPtr& p) { return p ? eval(*p) : Value::none(); };
        return slice(obj, part(e.b), part(e.c), part(e.items[0]));
      }
      case Expr::Kind::Call: {
        const Value fn = eval(*e.a);
        if (fn.is_undefined()) throw TemplateError(describe(*e.a) + " is undefined (calling it)");
        return fn.as_function()(eval_args(e.args));
      }
      case Expr::Kind::Filter: {
        if (e.name == "default" || e.name == "d") {  // its input may be undefined
          const Value v = eval(*e.a);
          CallArgs a = eval_args(e.args);
          const bool boolean = a.arg(1, "boolean") && a.arg(1, "boolean")->truthy();
          const Value fallback = a.arg(0, "default_value") ? *a.arg(0, "default_value") : Value("");
          return (v.is_undefined() || (boolean && !v.truthy())) ? fallback : v;
        }
        return apply_filter(e.name, eval(*e.a), eval_args(e.args));
      }
      case Expr::Kind::Test: {
        const bool r = apply_test(e.name, eval(*e.a), eval_args(e.args));
        return Value(e.negated ? !r : r);
      }
      case Expr::Kind::Unary: {
        const Value v = eval(*e.a);
        if (e.name == "not") return Value(!v.truthy());
        if (e.name == "-") return v.kind() == Value::Kind::Float ? Value(-v.as_float()) : Value(-v.as_int());
        return v;
      }
      case Expr::Kind::Binary: {
        if (e.name == "and") {
          Value l = eval(*e.a);
          return l.truthy() ? eval(*e.b) : l;
        }
        if (e.name == "or") {
          Value l = eval(*e.a);
          return l.truthy() ? l : eval(*e.b);
        }
        return binary_op(e.name, eval(*e.a), eval(*e.b));
      }
      case Expr::Kind::Compare: {
        Value left = eval(*e.a), result(true);
        for (std::size_t i = 0; i < e.items.size(); ++i) {
          Value right = eval(*e.items[i]);
          result = binary_op(e.ops[i], left, right);
          if (!result.truthy()) return result;
          left = std::move(right);
        }
        return result;
      }
      case Expr::Kind::Ternary:
        if (eval(*e.b).truthy()) return eval(*e.a);
        return e.c ? eval(*e.c) : Value();
    }
    return Value();
  }

  static std::string describe(const Expr& e) {
    if (e.kind == Expr::Kind::Name) return "'" + e.name + "'";
    if (e.kind == Expr::Kind::Attribute) return describe(*e.a) + "." + e.name;
    return "a value";
  }

  std::vector<Dict> scopes_;
};

}  // namespace

namespace {

// What Jinja's lexer does to a source first (keep_trailing_newline off, as transformers' environment):
// every \r\n or \r becomes \n, and one newline at the very end is dropped.
std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] != '\r') {
      out += source[i];
    } else {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

Template::Template(const std::string& source)
    : body_(std::make_shared<const StmtList>(parse_template(normalize_newlines(source)))) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const Dict& context) const {
  Renderer r(context);
  std::string out;
  r.exec(*body_, out);
  return out;
}

}  // namespace lockstep::jinja
