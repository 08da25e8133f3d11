// Jinja lexer and parser (see jinja_parser.h).
#include "model/chat_template/jinja_parser.h"

#include <cctype>
#include <set>
#include <stdexcept>

#include "model/chat_template/python_escapes.h"

namespace lockstep::jinja {
namespace {

struct Token {
  enum Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, Int, Float, String, Op, Eof } type;
  std::string text;
  int line;
};

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

class Lexer {
 public:
  explicit Lexer(const std::string& s) : src_(s) {}

  std::vector<Token> run() {
    std::size_t pos = 0;
    while (pos < src_.size()) {
      const std::size_t k = next_tag(pos);
      std::string text = src_.substr(pos, (k == std::string::npos ? src_.size() : k) - pos);
      if (k == std::string::npos) {
        emit_text(text, pos);
        break;
      }
      const char kind = src_[k + 1];
      const char mod = k + 2 < src_.size() ? src_[k + 2] : 0;
      if (mod == '-') {
        while (!text.empty() && is_ws(text.back())) text.pop_back();
      } else if ((kind == '%' || kind == '#') && mod != '+') {
        lstrip_block(text, pos);  // lstrip_blocks
      }
      emit_text(text, pos);
      std::size_t at = k + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
      bool strip_after = false;
      if (kind == '#') {
        const std::size_t end = src_.find("#}", at);
        if (end == std::string::npos) throw error("unterminated comment", k);
        strip_after = end > at && src_[end - 1] == '-';
        pos = end + 2;
      } else {
        tokens_.push_back({kind == '{' ? Token::VarBegin : Token::BlockBegin, "", line_at(k)});
        pos = lex_expression(at, kind == '{' ? "}}" : "%}", strip_after);
        tokens_.push_back({kind == '{' ? Token::VarEnd : Token::BlockEnd, "", line_at(pos)});
      }
      if (strip_after) {
        while (pos < src_.size() && is_ws(src_[pos])) ++pos;
      } else if (kind != '{' && pos < src_.size() && src_[pos] == '\n') {
        ++pos;  // trim_blocks
      }
    }
    tokens_.push_back({Token::Eof, "", line_at(src_.size())});
    return std::move(tokens_);
  }

 private:
  std::size_t next_tag(std::size_t from) const {
    for (std::size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return std::string::npos;
  }
  int line_at(std::size_t pos) const {
    int line = 1;
    for (std::size_t i = 0; i < pos && i < src_.size(); ++i) line += src_[i] == '\n';
    return line;
  }
  TemplateError error(const std::string& what, std::size_t pos) const {
    return TemplateError("chat template syntax error at line " + std::to_string(line_at(pos)) + ": " + what);
  }
  void lstrip_block(std::string& text, std::size_t text_start) const {
    const std::size_t nl = text.rfind('\n');
    const std::size_t tail = nl == std::string::npos ? 0 : nl + 1;
    if (nl == std::string::npos && !(text_start == 0 || src_[text_start - 1] == '\n')) return;
    for (std::size_t i = tail; i < text.size(); ++i)
      if (text[i] != ' ' && text[i] != '\t') return;
    text.resize(tail);
  }
  void emit_text(const std::string& text, std::size_t pos) {
    if (!text.empty()) tokens_.push_back({Token::Text, text, line_at(pos)});
  }

  std::size_t lex_expression(std::size_t at, const std::string& closer, bool& strip_after) {
    for (;;) {
      while (at < src_.size() && is_ws(src_[at])) ++at;
      if (at >= src_.size()) throw error("missing " + closer, at);
      if (src_.compare(at, 1, "-") == 0 && src_.compare(at + 1, 2, closer) == 0) {
        strip_after = true;
        return at + 3;
      }
      if (src_.compare(at, 2, closer) == 0) return at + 2;
      const char c = src_[at];
      const int line = line_at(at);
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        std::size_t e = at;
        while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        tokens_.push_back({Token::Name, src_.substr(at, e - at), line});
        at = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        std::size_t e = at;
        while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        bool is_float = false;
        if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
          is_float = true;
          ++e;
          while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
        }
        if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {  // exponent: 1e16, 2.5e-3
          std::size_t x = e + 1;
          if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
          if (x < src_.size() && std::isdigit(static_cast<unsigned char>(src_[x]))) {
            is_float = true;
            e = x;
            while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
          }
        }
        std::string num;
        for (std::size_t i = at; i < e; ++i)
          if (src_[i] != '_') num += src_[i];
        tokens_.push_back({is_float ? Token::Float : Token::Int, num, line});
        at = e;
      } else if (c == '\'' || c == '"') {
        // The literal's text up to its closing quote (a backslash keeps the next character in),
        // then its escapes decoded as Jinja decodes them (Python's unicode_escape).
        std::size_t e = at + 1;
        while (e < src_.size() && src_[e] != c) e += src_[e] == '\\' && e + 1 < src_.size() ? 2 : 1;
        if (e >= src_.size()) throw error("unterminated string", at);
        std::string s;
        try {
          s = decode_python_escapes(src_.substr(at + 1, e - at - 1));
        } catch (const std::runtime_error& x) {
          throw error(std::string("string literal: ") + x.what(), at);
        }
        tokens_.push_back({Token::String, s, line});
        at = e + 1;
      } else {
        static const char* two[] = {"**", "//", "==", "!=", "<=", ">="};
        std::string op(1, c);
        for (const char* t : two)
          if (src_.compare(at, 2, t) == 0) op = t;
        if (op.size() == 1 && std::string("+-*/%~<>=()[]{},.:|!?").find(c) == std::string::npos)
          throw error(std::string("unexpected character '") + c + "'", at);
        tokens_.push_back({Token::Op, op, line});
        at += op.size();
      }
    }
  }

  const std::string& src_;
  std::vector<Token> tokens_;
};

class Parser {
 public:
  explicit Parser(std::vector<Token> t) : t_(std::move(t)) {}

  StmtList parse_all() {
    std::string end;
    StmtList body = parse_body({}, end);
    if (!end.empty()) throw error("unexpected '" + end + "'");
    return body;
  }

 private:
  const Token& peek(int k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  Token next() { return t_[std::min(i_++, t_.size() - 1)]; }
  bool at_op(const char* op) const { return peek().type == Token::Op && peek().text == op; }
  bool at_name(const char* n) const { return peek().type == Token::Name && peek().text == n; }
  TemplateError error(const std::string& what) const {
    return TemplateError("chat template syntax error at line " + std::to_string(peek().line) + ": " + what);
  }
  void expect_op(const char* op) {
    if (!at_op(op)) throw error(std::string("expected '") + op + "'");
    ++i_;
  }
  void expect_name(const char* n) {
    if (!at_name(n)) throw error(std::string("expected '") + n + "'");
    ++i_;
  }
  std::string expect_identifier() {
    if (peek().type != Token::Name) throw error("expected a name");
    return next().text;
  }
  void expect_block_end() {
    if (peek().type != Token::BlockEnd) throw error("expected '%}'");
    ++i_;
  }

  // Statements until a block tag whose keyword is in `ends` (consumed; returned in `end`).
  StmtList parse_body(const std::set<std::string>& ends, std::string& end) {
    StmtList out;
    for (;;) {
      const Token& tk = peek();
      if (tk.type == Token::Eof) {
        if (!ends.empty()) throw error("missing {% " + *ends.rbegin() + " %}");
        end.clear();
        return out;
      }
      if (tk.type == Token::Text) {
        auto s = std::make_unique<Stmt>(Stmt::Kind::Text, tk.line);
        s->text = tk.text;
        out.push_back(std::move(s));
        ++i_;
      } else if (tk.type == Token::VarBegin) {
        ++i_;
        auto s = std::make_unique<Stmt>(Stmt::Kind::Output, tk.line);
        s->expr = parse_expr();
        if (peek().type != Token::VarEnd) throw error("expected '}}'");
        ++i_;
        out.push_back(std::move(s));
      } else if (tk.type == Token::BlockBegin) {
        ++i_;
        const std::string kw = expect_identifier();
        if (ends.count(kw)) {
          end = kw;
          return out;
        }
        out.push_back(parse_statement(kw, tk.line));
      } else {
        throw error("unexpected token");
      }
    }
  }

  std::unique_ptr<Stmt> parse_statement(const std::string& kw, int line) {
    std::string end;
    if (kw == "if") {
      auto s = std::make_unique<Stmt>(Stmt::Kind::If, line);
      ExprPtr cond = parse_expr();
      expect_block_end();
      for (;;) {
        StmtList body = parse_body({"elif", "else", "endif"}, end);
        s->branches.emplace_back(std::move(cond), std::move(body));
        if (end == "endif") break;
        if (end == "else") {
          expect_block_end();
          StmtList else_body = parse_body({"endif"}, end);
          s->branches.emplace_back(nullptr, std::move(else_body));
          break;
        }
        cond = parse_expr();
        expect_block_end();
      }
      expect_block_end();
      return s;
    }
    if (kw == "for") {
      auto s = std::make_unique<Stmt>(Stmt::Kind::For, line);
      s->targets.push_back(expect_identifier());
      while (at_op(",")) {
        ++i_;
        s->targets.push_back(expect_identifier());
      }
      expect_name("in");
      s->expr = parse_or(/*no_ternary=*/true);
      if (at_name("if")) {
        ++i_;
        s->filter = parse_or(true);
      }
      if (at_name("recursive")) throw error("recursive loops are not supported");
      expect_block_end();
      s->body = parse_body({"else", "endfor"}, end);
      if (end == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"}, end);
      }
      expect_block_end();
      return s;
    }
    if (kw == "set") {
      const std::string first = expect_identifier();
      if (at_op(".")) {
        ++i_;
        auto s = std::make_unique<Stmt>(Stmt::Kind::Set, line);
        auto ns = std::make_unique<Expr>(Expr::Kind::Name, line);
        ns->name = first;
        s->target_attr = std::move(ns);
        s->attr = expect_identifier();
        expect_op("=");
        s->expr = parse_expr();
        expect_block_end();
        return s;
      }
      std::vector<std::string> names{first};
      while (at_op(",")) {
        ++i_;
        names.push_back(expect_identifier());
      }
      if (at_op("=")) {
        ++i_;
        auto s = std::make_unique<Stmt>(Stmt::Kind::Set, line);
        s->targets = names;
        s->expr = parse_expr();
        expect_block_end();
        return s;
      }
      auto s = std::make_unique<Stmt>(Stmt::Kind::SetBlock, line);
      s->targets = names;
      expect_block_end();
      s->body = parse_body({"endset"}, end);
      expect_block_end();
      return s;
    }
    if (kw == "macro") {
      auto s = std::make_unique<Stmt>(Stmt::Kind::Macro, line);
      s->name = expect_identifier();
      expect_op("(");
      while (!at_op(")")) {
        std::string p = expect_identifier();
        ExprPtr def;
        if (at_op("=")) {
          ++i_;
          def = parse_expr();
        }
        s->params.emplace_back(p, std::move(def));
        if (!at_op(")")) expect_op(",");
      }
      ++i_;
      expect_block_end();
      s->body = parse_body({"endmacro"}, end);
      expect_block_end();
      return s;
    }
    if (kw == "break" || kw == "continue") {
      expect_block_end();
      return std::make_unique<Stmt>(kw == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, line);
    }
    if (kw == "generation") {  // transformers' assistant-mask tag: renders its body
      expect_block_end();
      auto s = std::make_unique<Stmt>(Stmt::Kind::If, line);
      auto always = std::make_unique<Expr>(Expr::Kind::Literal, line);
      always->literal = Value(true);
      s->branches.emplace_back(std::move(always), parse_body({"endgeneration"}, end));
      expect_block_end();
      return s;
    }
    throw error("unsupported tag '" + kw + "'");
  }

  ExprPtr make(Expr::Kind k) { return std::make_unique<Expr>(k, peek().line); }

  ExprPtr parse_expr() { return parse_or(false); }

  ExprPtr parse_or(bool no_ternary) {
    ExprPtr e = parse_or_chain();
    if (no_ternary || !at_name("if")) return e;
    ++i_;
    auto t = make(Expr::Kind::Ternary);
    t->a = std::move(e);
    t->b = parse_or_chain();
    if (at_name("else")) {
      ++i_;
      t->c = parse_or(false);
    }
    return t;
  }
  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r) {
    auto e = make(Expr::Kind::Binary);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return e;
  }
  ExprPtr parse_or_chain() {
    ExprPtr e = parse_and();
    while (at_name("or")) {
      ++i_;
      e = binary("or", std::move(e), parse_and());
    }
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (at_name("and")) {
      ++i_;
      e = binary("and", std::move(e), parse_not());
    }
    return e;
  }
  ExprPtr parse_not() {
    if (at_name("not")) {
      ++i_;
      auto e = make(Expr::Kind::Unary);
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }
  // Jinja's precedence, loosest first: comparisons (chained), + and -, ~, * / // %, **, unary
  // signs, then postfix, filters and tests.
  ExprPtr parse_compare() {
    ExprPtr first = parse_add();
    std::vector<std::string> ops;
    std::vector<ExprPtr> rest;
    for (;;) {
      if (peek().type == Token::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                       peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        ops.push_back(next().text);
      } else if (at_name("in")) {
        ++i_;
        ops.push_back("in");
      } else if (at_name("not") && peek(1).type == Token::Name && peek(1).text == "in") {
        i_ += 2;
        ops.push_back("not in");
      } else {
        break;
      }
      rest.push_back(parse_add());
    }
    if (ops.empty()) return first;
    if (ops.size() == 1) return binary(ops[0], std::move(first), std::move(rest[0]));
    auto e = make(Expr::Kind::Compare);
    e->a = std::move(first);
    e->items = std::move(rest);
    e->ops = std::move(ops);
    return e;
  }
  ExprPtr parse_add() {
    ExprPtr e = parse_concat();
    while (at_op("+") || at_op("-")) {
      const std::string op = next().text;
      e = binary(op, std::move(e), parse_concat());
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_mul();
    while (at_op("~")) {
      ++i_;
      e = binary("~", std::move(e), parse_mul());
    }
    return e;
  }
  ExprPtr parse_mul() {
    ExprPtr e = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const std::string op = next().text;
      e = binary(op, std::move(e), parse_pow());
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary();
    while (at_op("**")) {
      ++i_;
      e = binary("**", std::move(e), parse_unary());
    }
    return e;
  }
  // As Jinja: a sign takes the operand without its filters, and the filters then apply to the
  // signed value (-3 | abs is 3).
  ExprPtr parse_unary(bool with_filters = true) {
    ExprPtr e;
    if (at_op("-") || at_op("+")) {
      const std::string op = next().text;
      e = make(Expr::Kind::Unary);
      e->name = op;
      e->a = parse_unary(false);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    return with_filters ? parse_filters(std::move(e)) : std::move(e);
  }

  std::vector<Arg> parse_call_args() {  // after '('
    std::vector<Arg> args;
    while (!at_op(")")) {
      Arg a;
      if (peek().type == Token::Name && peek(1).type == Token::Op && peek(1).text == "=") {
        a.name = next().text;
        ++i_;
      }
      a.value = parse_expr();
      args.push_back(std::move(a));
      if (!at_op(")")) expect_op(",");
    }
    ++i_;
    return args;
  }

  ExprPtr parse_primary() {
    const Token tk = peek();
    if (tk.type == Token::String) {
      ++i_;
      std::string s = tk.text;
      while (peek().type == Token::String) s += next().text;  // adjacent literals concatenate
      auto e = make(Expr::Kind::Literal);
      e->literal = Value(s);
      return e;
    }
    if (tk.type == Token::Int || tk.type == Token::Float) {
      ++i_;
      auto e = make(Expr::Kind::Literal);
      e->literal = tk.type == Token::Int ? Value(static_cast<std::int64_t>(std::stoll(tk.text))) : Value(std::stod(tk.text));
      return e;
    }
    if (tk.type == Token::Name) {
      ++i_;
      auto e = make(Expr::Kind::Literal);
      if (tk.text == "true" || tk.text == "True") e->literal = Value(true);
      else if (tk.text == "false" || tk.text == "False") e->literal = Value(false);
      else if (tk.text == "none" || tk.text == "None") e->literal = Value::none();
      else {
        e = make(Expr::Kind::Name);
        e->name = tk.text;
      }
      return e;
    }
    if (at_op("(")) {
      ++i_;
      if (at_op(")")) {
        ++i_;
        return make(Expr::Kind::Tuple);
      }
      ExprPtr first = parse_expr();
      if (at_op(")")) {
        ++i_;
        return first;
      }
      auto t = make(Expr::Kind::Tuple);
      t->items.push_back(std::move(first));
      while (at_op(",")) {
        ++i_;
        if (at_op(")")) break;
        t->items.push_back(parse_expr());
      }
      expect_op(")");
      return t;
    }
    if (at_op("[")) {
      ++i_;
      auto l = make(Expr::Kind::List);
      while (!at_op("]")) {
        l->items.push_back(parse_expr());
        if (!at_op("]")) expect_op(",");
      }
      ++i_;
      return l;
    }
    if (at_op("{")) {
      ++i_;
      auto d = make(Expr::Kind::Dict);
      while (!at_op("}")) {
        d->items.push_back(parse_expr());
        expect_op(":");
        d->items.push_back(parse_expr());
        if (!at_op("}")) expect_op(",");
      }
      ++i_;
      return d;
    }
    throw error("unexpected '" + tk.text + "' in an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      if (at_op(".")) {
        ++i_;
        auto a = make(Expr::Kind::Attribute);
        a->a = std::move(e);
        if (peek().type == Token::Int) a->name = next().text;
        else a->name = expect_identifier();
        e = std::move(a);
      } else if (at_op("[")) {
        ++i_;
        ExprPtr parts[3];
        int n = 0;
        bool slice = false;
        for (;;) {
          if (!at_op(":") && !at_op("]")) parts[n] = parse_expr();
          if (at_op(":")) {
            slice = true;
            ++i_;
            if (++n > 2) throw error("a slice takes at most three parts");
            continue;
          }
          break;
        }
        expect_op("]");
        auto s = make(slice ? Expr::Kind::Slice : Expr::Kind::Subscript);
        s->a = std::move(e);
        if (slice) {
          s->b = std::move(parts[0]);
          s->c = std::move(parts[1]);
          s->items.push_back(std::move(parts[2]));
        } else {
          s->b = std::move(parts[0]);
        }
        e = std::move(s);
      } else if (at_op("(")) {
        ++i_;
        auto c = make(Expr::Kind::Call);
        c->a = std::move(e);
        c->args = parse_call_args();
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filters(ExprPtr e) {
    for (;;) {
      if (at_op("|")) {
        ++i_;
        auto f = make(Expr::Kind::Filter);
        f->name = expect_identifier();
        f->a = std::move(e);
        if (at_op("(")) {
          ++i_;
          f->args = parse_call_args();
        }
        e = std::move(f);
      } else if (at_name("is")) {
        ++i_;
        auto t = make(Expr::Kind::Test);
        if (at_name("not")) {
          ++i_;
          t->negated = true;
        }
        t->name = expect_identifier();
        t->a = std::move(e);
        if (at_op("(")) {
          ++i_;
          t->args = parse_call_args();
        } else if ((peek().type == Token::String || peek().type == Token::Int || peek().type == Token::Float ||
                    at_op("[") || at_op("{") ||
                    (peek().type == Token::Name && peek().text != "and" && peek().text != "or" &&
                     peek().text != "else" && peek().text != "if" && peek().text != "in" && peek().text != "is" &&
                     peek().text != "not"))) {
          Arg a;
          a.value = parse_postfix(parse_primary());
          t->args.push_back(std::move(a));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  std::size_t i_ = 0;
};

}  // namespace

StmtList parse_template(const std::string& source) { return Parser(Lexer(source).run()).parse_all(); }

}  // namespace lockstep::jinja
