// The syntax tree of a parsed Jinja template: expressions and statements.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/chat_template/jinja_value.h"

namespace lockstep::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Arg {
  std::string name;  // empty: positional
  ExprPtr value;
};

struct Expr {
  enum class Kind {
    Literal, Name, List, Dict, Tuple, Attribute, Subscript, Slice, Call, Filter, Test, Unary, Binary, Ternary,
    Compare,  // a chain as Python's: a < b <= c is (a < b) and (b <= c)
  } kind;
  int line = 0;
  Value literal;                       // Literal
  std::string name;                    // Name, Attribute, Filter, Test; Unary/Binary operator
  ExprPtr a, b, c;                     // operands: object/index, slice start/stop/step, ternary parts
  std::vector<ExprPtr> items;          // List, Tuple; Dict keys at even, values at odd positions; Compare: after a
  std::vector<std::string> ops;        // Compare: the operator before each of items
  std::vector<Arg> args;               // Call, Filter, Test
  bool negated = false;                // Test: `is not`
  explicit Expr(Kind k, int l) : kind(k), line(l) {}
};

struct Stmt;
using StmtList = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue } kind;
  int line = 0;
  std::string text;                                   // Text
  ExprPtr expr;                                       // Output, Set value, For iterable, If (unused)
  std::vector<std::pair<ExprPtr, StmtList>> branches; // If: (condition or null for else, body)
  std::vector<std::string> targets;                   // For loop vars, Set names
  ExprPtr target_attr;                                // Set ns.attr: the namespace expression
  std::string attr;                                   // Set ns.attr: the attribute
  ExprPtr filter;                                     // For ... if cond
  StmtList body, else_body;                           // For, SetBlock, Macro
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro parameters with defaults
  std::string name;                                   // Macro name
  explicit Stmt(Kind k, int l) : kind(k), line(l) {}
};

}  // namespace lockstep::jinja
