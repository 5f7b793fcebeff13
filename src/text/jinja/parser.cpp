#include "text/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include <fmt/format.h>

#include "text/jinja/eval_error.h"

namespace fp8llm::jinja {
namespace {

constexpr const char* kSupportedStatements =
    "if, for, set, macro, filter, raw, break, continue, generation";

// Deeper expressions or blocks than this are refused: evaluating them would recurse this deep.
constexpr int kMaxNesting = 256;

int depth_of(const ExprPtr& e) {
  return e ? e->depth : 0;
}
int depth_of(const std::vector<ExprPtr>& v) {
  int d = 0;
  for (const ExprPtr& e : v) d = std::max(d, depth_of(e));
  return d;
}
int depth_of(const CallArgsExpr& a) {
  int d = depth_of(a.positional);
  for (const auto& [_, e] : a.keyword) d = std::max(d, depth_of(e));
  return d;
}
int children_depth(const LiteralExpr&) {
  return 0;
}
int children_depth(const NameExpr&) {
  return 0;
}
int children_depth(const ListExpr& n) {
  return depth_of(n.items);
}
int children_depth(const DictExpr& n) {
  int d = 0;
  for (const auto& [k, v] : n.items) d = std::max({d, depth_of(k), depth_of(v)});
  return d;
}
int children_depth(const AttrExpr& n) {
  return depth_of(n.object);
}
int children_depth(const ItemExpr& n) {
  return std::max(depth_of(n.object), depth_of(n.index));
}
int children_depth(const SliceExpr& n) {
  return std::max({depth_of(n.object), depth_of(n.start), depth_of(n.stop), depth_of(n.step)});
}
int children_depth(const UnaryExpr& n) {
  return depth_of(n.operand);
}
int children_depth(const BinaryExpr& n) {
  return std::max(depth_of(n.left), depth_of(n.right));
}
int children_depth(const ConcatExpr& n) {
  return depth_of(n.parts);
}
int children_depth(const LogicExpr& n) {
  return std::max(depth_of(n.left), depth_of(n.right));
}
int children_depth(const CompareExpr& n) {
  int d = depth_of(n.first);
  for (const auto& [_, e] : n.rest) d = std::max(d, depth_of(e));
  return d;
}
int children_depth(const CondExpr& n) {
  return std::max({depth_of(n.cond), depth_of(n.then), depth_of(n.otherwise)});
}
int children_depth(const CallExpr& n) {
  return std::max(depth_of(n.callee), depth_of(n.args));
}
int children_depth(const FilterExpr& n) {
  return std::max(depth_of(n.operand), depth_of(n.args));
}
int children_depth(const TestExpr& n) {
  return std::max(depth_of(n.operand), depth_of(n.args));
}

template <typename Node>
StmtPtr make_stmt(int line, Node node) {
  auto s = std::make_unique<Stmt>();
  s->line = line;
  s->node = std::move(node);
  return s;
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case TokenKind::kData:
      return "template text";
    case TokenKind::kVariableBegin:
      return "'{{'";
    case TokenKind::kVariableEnd:
      return "end of print statement '}}'";
    case TokenKind::kBlockBegin:
      return "'{%'";
    case TokenKind::kBlockEnd:
      return "end of statement block '%}'";
    case TokenKind::kString:
      return "string literal";
    case TokenKind::kEnd:
      return "end of template";
    default:
      return "'" + t.text + "'";
  }
}

// The block being parsed, for "never closed" and "unexpected end tag" messages.
struct OpenBlock {
  std::string tag;
  int line;
  std::vector<std::string_view> end_tags;
};

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& name) : t_(tokens), name_(name) {}

  Body parse_template() {
    std::string end;
    Body body = parse_body({}, &end);
    return body;
  }

 private:
  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t n = 1) const { return t_[std::min(i_ + n, t_.size() - 1)]; }
  const Token& advance() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }

  bool is_op(std::string_view op, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == TokenKind::kOperator && t.text == op;
  }
  bool is_name(std::string_view name, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == TokenKind::kName && t.text == name;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }

  template <typename... Args>
  [[noreturn]] void fail(int line, fmt::format_string<Args...> format, Args&&... args) const {
    fail_at(name_, line, format, std::forward<Args>(args)...);
  }

  void expect_op(std::string_view op) {
    if (!is_op(op)) fail(cur().line, "expected '{}', got {}", op, describe(cur()));
    advance();
  }
  std::string expect_name(std::string_view what) {
    if (cur().kind != TokenKind::kName)
      fail(cur().line, "expected {}, got {}", what, describe(cur()));
    return advance().text;
  }
  void expect_block_end() {
    if (cur().kind != TokenKind::kBlockEnd) {
      fail(cur().line, "expected end of statement block '%}}', got {}", describe(cur()));
    }
    advance();
  }

  // Statements up to one of `end_tags` (whose name is consumed and stored in *end), or to the end
  // of the template when end_tags is empty.
  Body parse_body(std::vector<std::string_view> end_tags, std::string* end) {
    Body body;
    while (true) {
      const Token& t = cur();
      switch (t.kind) {
        case TokenKind::kData:
          body.push_back(make_stmt(t.line, TextStmt{t.text}));
          advance();
          break;
        case TokenKind::kVariableBegin: {
          const int line = advance().line;
          ExprPtr e = parse_tuple(true, {});
          if (cur().kind != TokenKind::kVariableEnd) {
            fail(cur().line, "expected end of print statement '}}}}', got {}", describe(cur()));
          }
          advance();
          body.push_back(make_stmt(line, OutputStmt{std::move(e)}));
          break;
        }
        case TokenKind::kBlockBegin: {
          const Token& tag = peek();
          if (tag.kind == TokenKind::kName &&
              std::find(end_tags.begin(), end_tags.end(), tag.text) != end_tags.end()) {
            advance();
            *end = advance().text;
            return body;
          }
          advance();
          body.push_back(parse_statement());
          break;
        }
        case TokenKind::kEnd:
          if (!open_.empty()) {
            const OpenBlock& b = open_.back();
            fail(b.line, "'{}' block is never closed (expected '{}')", b.tag, b.end_tags.back());
          }
          return body;
        default:
          fail(t.line, "unexpected {}", describe(t));
      }
    }
  }

  // A nested block's body; pushes the block for error messages.
  Body parse_block_body(const std::string& tag, int line, std::vector<std::string_view> end_tags,
                        std::string* end) {
    open_.push_back(OpenBlock{tag, line, end_tags});
    Body body = parse_body(std::move(end_tags), end);
    open_.pop_back();
    return body;
  }

  StmtPtr parse_statement() {
    const NestingGuard guard(*this, cur().line);
    const Token& t = cur();
    if (t.kind != TokenKind::kName) fail(t.line, "expected a statement name, got {}", describe(t));
    const std::string& tag = t.text;
    const int line = t.line;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "filter") return parse_filter_block();
    if (tag == "generation") {
      advance();
      expect_block_end();
      std::string end;
      Body body = parse_block_body("generation", line, {"endgeneration"}, &end);
      expect_block_end();
      return make_stmt(line, ScopeStmt{std::move(body)});
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail(line, "'{}' outside of a for loop", tag);
      advance();
      expect_block_end();
      if (tag == "break") return make_stmt(line, BreakStmt{});
      return make_stmt(line, ContinueStmt{});
    }
    static const std::string_view kEndTags[] = {"endif",     "endfor",        "elif",
                                                "else",      "endset",        "endmacro",
                                                "endfilter", "endgeneration", "endraw"};
    if (std::find(std::begin(kEndTags), std::end(kEndTags), tag) != std::end(kEndTags)) {
      if (open_.empty()) fail(line, "unexpected '{}': no open block to end", tag);
      const OpenBlock& b = open_.back();
      fail(line, "unexpected '{}' inside the '{}' block opened on line {} (expected {})", tag,
           b.tag, b.line, fmt::join(quoted(b.end_tags), " or "));
    }
    fail(line, "unsupported statement '{}' (supported: {})", tag, kSupportedStatements);
  }

  static std::vector<std::string> quoted(const std::vector<std::string_view>& names) {
    std::vector<std::string> out;
    for (auto n : names) out.push_back(fmt::format("'{}'", n));
    return out;
  }

  StmtPtr parse_if() {
    const int line = advance().line;
    IfStmt node;
    ExprPtr cond = parse_tuple(false, {});
    expect_block_end();
    while (true) {
      std::string end;
      Body body = parse_block_body("if", line, {"elif", "else", "endif"}, &end);
      node.branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") {
        cond = parse_tuple(false, {});
        expect_block_end();
        continue;
      }
      expect_block_end();
      if (end == "else") {
        node.otherwise = parse_block_body("if", line, {"endif"}, &end);
        expect_block_end();
      }
      break;
    }
    return make_stmt(line, std::move(node));
  }

  Target parse_assign_target(bool with_namespace,
                             std::initializer_list<std::string_view> end_names) {
    Target target;
    const int line = cur().line;
    if (with_namespace && cur().kind == TokenKind::kName && is_op(".", 1)) {
      target.names.push_back(advance().text);
      advance();
      target.attribute = expect_name("an attribute name");
      return target;
    }
    bool parenthesized = skip_op("(");
    while (true) {
      if (cur().kind != TokenKind::kName) {
        fail(cur().line, "expected a variable name to assign to, got {}", describe(cur()));
      }
      const std::string& n = cur().text;
      if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" ||
          n == "None") {
        fail(cur().line, "can't assign to '{}'", n);
      }
      target.names.push_back(advance().text);
      if (!is_op(",")) break;
      advance();
      target.unpack = true;
      const bool at_end = cur().kind == TokenKind::kBlockEnd || is_op(")") || is_op("=") ||
                          std::any_of(end_names.begin(), end_names.end(),
                                      [&](std::string_view e) { return is_name(e); });
      if (at_end) break;
    }
    if (parenthesized) {
      expect_op(")");
      target.unpack = true;
    }
    if (target.names.empty()) fail(line, "expected a variable name to assign to");
    return target;
  }

  StmtPtr parse_for() {
    const int line = advance().line;
    ForStmt node;
    node.target = parse_assign_target(false, {"in"});
    if (!skip_name("in")) fail(cur().line, "expected 'in' in for loop, got {}", describe(cur()));
    node.iterable = parse_tuple(false, {"recursive"});
    if (skip_name("if")) node.filter = parse_expression(true);
    if (is_name("recursive")) fail(cur().line, "recursive for loops are not supported");
    expect_block_end();
    std::string end;
    ++loop_depth_;
    node.body = parse_block_body("for", line, {"else", "endfor"}, &end);
    --loop_depth_;
    expect_block_end();
    if (end == "else") {
      node.otherwise = parse_block_body("for", line, {"endfor"}, &end);
      expect_block_end();
    }
    return make_stmt(line, std::move(node));
  }

  StmtPtr parse_set() {
    const int line = advance().line;
    Target target = parse_assign_target(true, {});
    if (skip_op("=")) {
      ExprPtr value = parse_tuple(true, {});
      expect_block_end();
      return make_stmt(line, SetStmt{std::move(target), std::move(value)});
    }
    if (target.unpack || !target.attribute.empty()) {
      fail(line, "a block 'set' assigns to one plain name");
    }
    SetBlockStmt node;
    node.name = target.names[0];
    if (is_op("|")) {
      advance();
      node.filters = parse_filter_chain();
    }
    expect_block_end();
    std::string end;
    node.body = parse_block_body("set", line, {"endset"}, &end);
    expect_block_end();
    return make_stmt(line, std::move(node));
  }

  StmtPtr parse_macro() {
    const int line = advance().line;
    MacroStmt node;
    node.name = expect_name("a macro name");
    expect_op("(");
    while (!is_op(")")) {
      if (!node.params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam param;
      param.name = expect_name("a parameter name");
      if (skip_op("=")) {
        param.default_value = parse_expression(true);
      } else if (!node.params.empty() && node.params.back().default_value) {
        fail(cur().line, "parameter '{}' without a default follows one with a default", param.name);
      }
      node.params.push_back(std::move(param));
    }
    advance();
    expect_block_end();
    std::string end;
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;  // a macro body is a function: loops around its definition don't count
    node.body = parse_block_body("macro", line, {"endmacro"}, &end);
    loop_depth_ = saved_loop_depth;
    if (cur().kind == TokenKind::kName && cur().text == node.name) advance();
    expect_block_end();
    return make_stmt(line, std::move(node));
  }

  StmtPtr parse_filter_block() {
    const int line = advance().line;
    FilterBlockStmt node;
    node.filters = parse_filter_chain();
    expect_block_end();
    std::string end;
    node.body = parse_block_body("filter", line, {"endfilter"}, &end);
    expect_block_end();
    return make_stmt(line, std::move(node));
  }

  // name(args) | name ... after a '|' (or after `filter`).
  std::vector<FilterCall> parse_filter_chain() {
    std::vector<FilterCall> chain;
    while (true) {
      FilterCall call;
      call.line = cur().line;
      call.name = parse_dotted_name("a filter name");
      call.fn = find_filter(call.name);
      if (!call.fn) fail(call.line, "unsupported filter '{}'", call.name);
      if (is_op("(")) call.args = parse_call_args();
      chain.push_back(std::move(call));
      if (!skip_op("|")) return chain;
    }
  }

  std::string parse_dotted_name(std::string_view what) {
    std::string name = expect_name(what);
    while (skip_op(".")) name.append(".").append(expect_name(what));
    return name;
  }

  // ---- expressions ----

  bool is_tuple_end(std::initializer_list<std::string_view> end_names) const {
    const Token& t = cur();
    if (t.kind == TokenKind::kVariableEnd || t.kind == TokenKind::kBlockEnd || is_op(")"))
      return true;
    return std::any_of(end_names.begin(), end_names.end(),
                       [&](std::string_view e) { return is_name(e); });
  }

  // Comma-separated expressions make a tuple (`{{ a, b }}`, `set x = 1, 2`).
  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<std::string_view> end_names,
                      bool explicit_parentheses = false) {
    const int line = cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(end_names)) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses)
        fail(cur().line, "expected an expression, got {}", describe(cur()));
    }
    return make_expr(line, ListExpr{std::move(items), true});
  }

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    const int line = cur().line;
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      ExprPtr cond = parse_or();
      ExprPtr otherwise;
      if (skip_name("else")) {
        const NestingGuard guard(*this, line);
        otherwise = parse_condexpr();
      }
      expr = make_expr(line, CondExpr{std::move(cond), std::move(expr), std::move(otherwise)});
    }
    return expr;
  }

  ExprPtr parse_or() {
    const int line = cur().line;
    ExprPtr left = parse_and();
    while (skip_name("or"))
      left = make_expr(line, LogicExpr{LogicOp::kOr, std::move(left), parse_and()});
    return left;
  }

  ExprPtr parse_and() {
    const int line = cur().line;
    ExprPtr left = parse_not();
    while (skip_name("and"))
      left = make_expr(line, LogicExpr{LogicOp::kAnd, std::move(left), parse_not()});
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      const int line = advance().line;
      const NestingGuard guard(*this, line);
      return make_expr(line, UnaryExpr{UnaryOp::kNot, parse_not()});
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr first = parse_math1();
    std::vector<std::pair<CompareOp, ExprPtr>> rest;
    while (true) {
      static const std::pair<std::string_view, CompareOp> kOps[] = {
          {"==", CompareOp::kEq}, {"!=", CompareOp::kNe}, {"<", CompareOp::kLt},
          {"<=", CompareOp::kLe}, {">", CompareOp::kGt},  {">=", CompareOp::kGe}};
      const auto* op = std::find_if(std::begin(kOps), std::end(kOps),
                                    [&](const auto& o) { return is_op(o.first); });
      if (op != std::end(kOps)) {
        advance();
        rest.emplace_back(op->second, parse_math1());
      } else if (skip_name("in")) {
        rest.emplace_back(CompareOp::kIn, parse_math1());
      } else if (is_name("not") && is_name("in", 1)) {
        advance();
        advance();
        rest.emplace_back(CompareOp::kNotIn, parse_math1());
      } else {
        break;
      }
    }
    if (rest.empty()) return first;
    return make_expr(line, CompareExpr{std::move(first), std::move(rest)});
  }

  ExprPtr parse_math1() {
    const int line = cur().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const BinaryOp op = advance().text == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
      left = make_expr(line, BinaryExpr{op, std::move(left), parse_concat()});
    }
    return left;
  }

  ExprPtr parse_concat() {
    const int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    ConcatExpr node;
    node.parts.push_back(std::move(first));
    while (skip_op("~")) node.parts.push_back(parse_math2());
    return make_expr(line, std::move(node));
  }

  ExprPtr parse_math2() {
    const int line = cur().line;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string& t = advance().text;
      const BinaryOp op = t == "*"    ? BinaryOp::kMul
                          : t == "/"  ? BinaryOp::kDiv
                          : t == "//" ? BinaryOp::kFloorDiv
                                      : BinaryOp::kMod;
      left = make_expr(line, BinaryExpr{op, std::move(left), parse_pow()});
    }
    return left;
  }

  ExprPtr parse_pow() {
    const int line = cur().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**"))
      left = make_expr(line, BinaryExpr{BinaryOp::kPow, std::move(left), parse_unary(true)});
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    const int line = cur().line;
    const NestingGuard guard(*this, line);
    ExprPtr node;
    if (skip_op("-")) {
      node = make_expr(line, UnaryExpr{UnaryOp::kNeg, parse_unary(false)});
    } else if (skip_op("+")) {
      node = make_expr(line, UnaryExpr{UnaryOp::kPos, parse_unary(false)});
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    const int line = t.line;
    switch (t.kind) {
      case TokenKind::kName: {
        advance();
        if (t.text == "true" || t.text == "True") return make_expr(line, LiteralExpr{Value(true)});
        if (t.text == "false" || t.text == "False")
          return make_expr(line, LiteralExpr{Value(false)});
        if (t.text == "none" || t.text == "None")
          return make_expr(line, LiteralExpr{Value::none()});
        return make_expr(line, NameExpr{t.text});
      }
      case TokenKind::kString: {
        std::string text;
        while (cur().kind == TokenKind::kString) text += advance().text;
        return make_expr(line, LiteralExpr{Value(std::move(text))});
      }
      case TokenKind::kInteger:
        advance();
        return make_expr(line, LiteralExpr{Value(t.int_value)});
      case TokenKind::kFloat:
        advance();
        return make_expr(line, LiteralExpr{Value(t.float_value)});
      default:
        break;
    }
    if (skip_op("(")) {
      ExprPtr e = parse_tuple(true, {}, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) return parse_list();
    if (is_op("{")) return parse_dict();
    fail(line, "unexpected {}", describe(t));
  }

  ExprPtr parse_list() {
    const int line = advance().line;
    ListExpr node;
    while (!is_op("]")) {
      if (!node.items.empty()) expect_op(",");
      if (is_op("]")) break;
      node.items.push_back(parse_expression(true));
    }
    advance();
    return make_expr(line, std::move(node));
  }

  ExprPtr parse_dict() {
    const int line = advance().line;
    DictExpr node;
    while (!is_op("}")) {
      if (!node.items.empty()) expect_op(",");
      if (is_op("}")) break;
      ExprPtr key = parse_expression(true);
      expect_op(":");
      node.items.emplace_back(std::move(key), parse_expression(true));
    }
    advance();
    return make_expr(line, std::move(node));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        advance();
        for (FilterCall& call : parse_filter_chain()) {
          node = make_expr(call.line, FilterExpr{std::move(node), std::move(call.name), call.fn,
                                                 std::move(call.args)});
        }
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = advance();
    const int line = t.line;
    if (t.text == ".") {
      const Token& attr = cur();
      if (attr.kind == TokenKind::kName) {
        advance();
        return make_expr(line, AttrExpr{std::move(node), attr.text});
      }
      if (attr.kind == TokenKind::kInteger) {
        advance();
        return make_expr(
            line, ItemExpr{std::move(node), make_expr(line, LiteralExpr{Value(attr.int_value)})});
      }
      fail(attr.line, "expected an attribute name after '.', got {}", describe(attr));
    }
    // '[': an index, a slice, or (like Python) a tuple of them.
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed(line));
    }
    advance();
    if (args.size() == 1) {
      if (auto* slice = std::get_if<SliceExpr>(&args[0]->node); slice && !slice->object) {
        slice->object = std::move(node);
        return std::move(args[0]);
      }
      return make_expr(line, ItemExpr{std::move(node), std::move(args[0])});
    }
    if (args.empty()) fail(line, "expected an index or slice inside '[]'");
    fail(line, "multiple subscripts inside '[]' are not supported");
  }

  // One subscript: an expression or a start:stop:step slice (returned with a null object).
  ExprPtr parse_subscribed(int line) {
    ExprPtr start;
    if (!is_op(":")) {
      start = parse_expression(true);
      if (!is_op(":")) return start;
    }
    advance();
    SliceExpr slice;
    slice.start = std::move(start);
    if (!is_op("]") && !is_op(",") && !is_op(":")) slice.stop = parse_expression(true);
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) slice.step = parse_expression(true);
    }
    return make_expr(line, std::move(slice));
  }

  CallArgsExpr parse_call_args() {
    const int line = cur().line;
    expect_op("(");
    CallArgsExpr args;
    bool need_comma = false;
    while (!is_op(")")) {
      if (need_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**"))
        fail(cur().line, "*args and **kwargs in calls are not supported");
      if (cur().kind == TokenKind::kName && is_op("=", 1)) {
        std::string key = advance().text;
        advance();
        args.keyword.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!args.keyword.empty()) fail(line, "positional argument follows keyword argument");
        args.positional.push_back(parse_expression(true));
      }
      need_comma = true;
    }
    advance();
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    const int line = cur().line;
    CallArgsExpr args = parse_call_args();
    return make_expr(line, CallExpr{std::move(callee), std::move(args)});
  }

  ExprPtr parse_test(ExprPtr node) {
    const int line = advance().line;
    const bool negated = skip_name("not");
    TestExpr test;
    test.name = parse_dotted_name("a test name");
    test.fn = find_test(test.name);
    if (!test.fn) fail(line, "unsupported test '{}'", test.name);
    test.negated = negated;
    const Token& t = cur();
    if (is_op("(")) {
      test.args = parse_call_args();
    } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString ||
                t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat || is_op("[") ||
                is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail(t.line, "you cannot chain multiple tests with 'is'");
      test.args.positional.push_back(parse_postfix(parse_primary()));
    }
    test.operand = std::move(node);
    return make_expr(line, std::move(test));
  }

  template <typename Node>
  ExprPtr make_expr(int line, Node node) const {
    auto e = std::make_unique<Expr>();
    e->line = line;
    e->depth = 1 + children_depth(node);
    if (e->depth > kMaxNesting)
      fail(line, "expression nested more than {} levels deep", kMaxNesting);
    e->node = std::move(node);
    return e;
  }

  // Counts the parser's own recursion (parentheses, `not not`, nested blocks) while alive.
  class NestingGuard {
   public:
    NestingGuard(Parser& p, int line) : p_(p) {
      if (++p_.nesting_ > kMaxNesting) {
        p_.fail(line, "template nested more than {} levels deep", kMaxNesting);
      }
    }
    ~NestingGuard() { --p_.nesting_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    Parser& p_;
  };

  const std::vector<Token>& t_;
  const std::string& name_;
  size_t i_ = 0;
  int nesting_ = 0;
  int loop_depth_ = 0;
  std::vector<OpenBlock> open_;
};

}  // namespace

Body parse(const std::vector<Token>& tokens, const std::string& template_name) {
  return Parser(tokens, template_name).parse_template();
}

}  // namespace fp8llm::jinja
