// The parsed form of a template: expressions and statements, each remembering its source line
// for error messages.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "text/jinja/filters.h"
#include "text/jinja/operations.h"
#include "text/jinja/predicates.h"
#include "text/jinja/value.h"

namespace fp8llm::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgsExpr {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct LiteralExpr {
  Value value;
};
struct NameExpr {
  std::string name;
};
struct ListExpr {
  std::vector<ExprPtr> items;
  bool tuple = false;
};
struct DictExpr {
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};
struct AttrExpr {  // object.name
  ExprPtr object;
  std::string name;
};
struct ItemExpr {  // object[index]
  ExprPtr object;
  ExprPtr index;
};
struct SliceExpr {  // object[start:stop:step]; absent parts are null
  ExprPtr object;
  ExprPtr start, stop, step;
};
enum class UnaryOp { kNeg, kPos, kNot };
struct UnaryExpr {
  UnaryOp op;
  ExprPtr operand;
};
struct BinaryExpr {  // arithmetic
  BinaryOp op;
  ExprPtr left, right;
};
struct ConcatExpr {  // a ~ b ~ c
  std::vector<ExprPtr> parts;
};
enum class LogicOp { kAnd, kOr };
struct LogicExpr {
  LogicOp op;
  ExprPtr left, right;
};
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };
struct CompareExpr {  // a < b < c compares pairwise, as in Python
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
};
struct CondExpr {  // then if cond else otherwise; otherwise may be null (Undefined)
  ExprPtr cond, then, otherwise;
};
struct CallExpr {
  ExprPtr callee;
  CallArgsExpr args;
};
struct FilterExpr {  // operand | name(args)
  ExprPtr operand;
  std::string name;
  FilterFunction fn;
  CallArgsExpr args;
};
struct TestExpr {  // operand is [not] name(args)
  ExprPtr operand;
  std::string name;
  TestFunction fn;
  CallArgsExpr args;
  bool negated = false;
};

struct Expr {
  int line = 0;
  int depth = 1;  // nodes on the longest path down from here; the evaluator recurses that deep
  std::variant<LiteralExpr, NameExpr, ListExpr, DictExpr, AttrExpr, ItemExpr, SliceExpr, UnaryExpr,
               BinaryExpr, ConcatExpr, LogicExpr, CompareExpr, CondExpr, CallExpr, FilterExpr,
               TestExpr>
      node;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// What `for` and `set` assign to: one name, several names (unpacking), or `ns.attr`.
struct Target {
  std::vector<std::string> names;
  bool unpack = false;    // names came as a tuple: `for k, v in ...`
  std::string attribute;  // non-empty: assign names[0].attribute (a namespace)
};

// A filter applied by `{% filter f %}` or `{% set x | f %}` to rendered text.
struct FilterCall {
  int line = 0;
  std::string name;
  FilterFunction fn;
  CallArgsExpr args;
};

struct TextStmt {
  std::string text;
};
struct OutputStmt {
  ExprPtr expr;
};
struct IfStmt {
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif...
  Body otherwise;
};
struct ForStmt {
  Target target;
  ExprPtr iterable;
  ExprPtr filter;  // `for x in xs if cond`; may be null
  Body body;
  Body otherwise;  // runs when no iteration completed
};
struct SetStmt {
  Target target;
  ExprPtr value;
};
struct SetBlockStmt {  // {% set name | filters %}body{% endset %}
  std::string name;
  std::vector<FilterCall> filters;
  Body body;
};
struct FilterBlockStmt {  // {% filter f %}body{% endfilter %}
  std::vector<FilterCall> filters;
  Body body;
};
struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};
struct MacroStmt {
  std::string name;
  std::vector<MacroParam> params;
  Body body;
};
struct ScopeStmt {  // {% generation %}: renders its body in a nested scope
  Body body;
};
struct BreakStmt {};
struct ContinueStmt {};

struct Stmt {
  int line = 0;
  std::variant<TextStmt, OutputStmt, IfStmt, ForStmt, SetStmt, SetBlockStmt, FilterBlockStmt,
               MacroStmt, ScopeStmt, BreakStmt, ContinueStmt>
      node;
};

}  // namespace fp8llm::jinja
