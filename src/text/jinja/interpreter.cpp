#include "text/jinja/interpreter.h"

#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "text/jinja/eval_error.h"
#include "text/jinja/globals.h"
#include "text/jinja/limits.h"
#include "text/jinja/operations.h"

namespace fp8llm::jinja {
namespace {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};

// Ownership: scopes form a tree of shared pointers from child to parent, and no value owns a
// scope, so nothing a template does can make a reference cycle through one. Macros and
// loop.changed() need state that outlives the block that made it (a macro can be called after its
// block ended, from a namespace or a list); the render owns that state and they refer to it
// without owning it. Namespaces are the one thing a template can make refer to itself
// (`set ns.me = ns`); the render empties the ones it made when it ends.
class Interpreter {
 public:
  Interpreter(const Dict& variables, const std::string& name)
      : name_(name),
        scope_(std::make_shared<Scope>()),
        namespace_(
            Value::function("namespace", [this](Args& args) { return new_namespace(args); })) {
    for (const auto& [k, v] : variables.items()) scope_->vars[k] = v;
  }

  ~Interpreter() {
    // Every namespace is held while they are emptied, so that freeing what one holds never frees
    // another inside it: a chain of namespaces holding each other is freed one at a time instead
    // of recursively (which a long chain would overflow the stack with).
    std::vector<std::shared_ptr<Object>> alive;
    for (const std::weak_ptr<Object>& weak : namespaces_) {
      if (std::shared_ptr<Object> ns = weak.lock()) alive.push_back(std::move(ns));
    }
    for (const std::shared_ptr<Object>& ns : alive) {
      const Dict attrs = std::exchange(ns->attrs, Dict());
    }
  }

  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  void run(const Body& body, std::string& out) { exec_body(body, out); }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  // Makes a child of `parent` the current scope until destroyed.
  class ScopeGuard {
   public:
    ScopeGuard(Interpreter& in, std::shared_ptr<Scope> parent) : in_(in), saved_(in.scope_) {
      in_.scope_ = std::make_shared<Scope>(Scope{{}, std::move(parent)});
    }
    ~ScopeGuard() { in_.scope_ = std::move(saved_); }
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;

   private:
    Interpreter& in_;
    std::shared_ptr<Scope> saved_;
  };

  Flow exec_body(const Body& body, std::string& out) {
    for (const StmtPtr& s : body) {
      const Flow f = exec(*s, out);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  // Counts work against kMaxWork (limits.h).
  void charge(int64_t units) {
    work_ += units;
    if (work_ > kMaxWork) {
      eval_fail(
          "the template does more than {} units of work (statements, loop iterations and values "
          "built), far beyond what a chat template needs: an endless or huge loop?",
          kMaxWork);
    }
  }
  static int64_t cost_of(const Value& v) {
    switch (v.kind()) {
      case Value::Kind::kString:
        return 1 + static_cast<int64_t>(v.as_string().size() / 64);
      case Value::Kind::kList:
        return 1 + static_cast<int64_t>(v.as_list().size() / 16);
      case Value::Kind::kDict:
        return 1 + static_cast<int64_t>(v.as_dict().size() / 16);
      default:
        return 1;
    }
  }
  // Text written (to the output, a captured block or a macro's result).
  void write(std::string& out, std::string_view text) {
    charge(static_cast<int64_t>(text.size() / 64));
    append_bounded(out, text);
  }

  Flow exec(const Stmt& s, std::string& out) {
    try {
      charge(1);
      return std::visit([&](const auto& node) { return exec_node(node, s.line, out); }, s.node);
    } catch (const EvalError& e) {
      fail_at(name_, s.line, "{}", e.what());
    }
  }

  Flow exec_node(const TextStmt& node, int, std::string& out) {
    write(out, node.text);
    return Flow::kNormal;
  }

  Flow exec_node(const OutputStmt& node, int, std::string& out) {
    const Value v = eval(*node.expr);
    if (v.is_string()) {
      write(out, v.as_string());
    } else {
      write(out, to_str(v));
    }
    return Flow::kNormal;
  }

  Flow exec_node(const IfStmt& node, int, std::string& out) {
    for (const auto& [cond, body] : node.branches) {
      if (truthy(eval(*cond))) return exec_body(body, out);
    }
    return exec_body(node.otherwise, out);
  }

  Flow exec_node(const ForStmt& node, int line, std::string& out) {
    std::vector<Value> items = iterate(eval(*node.iterable));
    if (node.filter) {
      std::vector<Value> kept;
      for (Value& item : items) {
        charge(1);
        ScopeGuard guard(*this, scope_);
        assign(node.target, item, line);
        if (truthy(eval(*node.filter))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const auto n = static_cast<int64_t>(items.size());
    bool completed_an_iteration = false;
    std::optional<Value>& changed_state = changed_states_.emplace_back();
    for (int64_t i = 0; i < n; ++i) {
      charge(kLoopIterationWork);
      ScopeGuard guard(*this, scope_);
      assign(node.target, items[i], line);
      scope_->vars["loop"] = loop_object(items, i, changed_state);
      const Flow f = exec_body(node.body, out);
      if (f == Flow::kBreak) break;
      if (f == Flow::kContinue) continue;
      completed_an_iteration = true;
    }
    // jinja2 runs `else` unless some iteration ran to its end (a `break` or `continue` in the
    // only iterations does not count).
    if (!completed_an_iteration) {
      ScopeGuard guard(*this, scope_);
      return exec_body(node.otherwise, out);
    }
    return Flow::kNormal;
  }

  Flow exec_node(const SetStmt& node, int line, std::string&) {
    assign(node.target, eval(*node.value), line);
    return Flow::kNormal;
  }

  Flow exec_node(const SetBlockStmt& node, int, std::string&) {
    std::string text;
    {
      ScopeGuard guard(*this, scope_);
      exec_body(node.body, text);
    }
    scope_->vars[node.name] = apply_filters(Value(std::move(text)), node.filters);
    return Flow::kNormal;
  }

  Flow exec_node(const FilterBlockStmt& node, int, std::string& out) {
    std::string text;
    {
      ScopeGuard guard(*this, scope_);
      exec_body(node.body, text);
    }
    write(out, to_str(apply_filters(Value(std::move(text)), node.filters)));
    return Flow::kNormal;
  }

  // The macro may be called after its scope's block ended (it can be stored in a namespace or a
  // list), so the render keeps that scope; the macro names it by index, because the scope holds
  // the macro and two shared pointers at each other would never be freed.
  Flow exec_node(const MacroStmt& node, int, std::string&) {
    if (closures_.empty() || closures_.back() != scope_) closures_.push_back(scope_);
    const size_t closure = closures_.size() - 1;
    const MacroStmt* macro = &node;
    scope_->vars[node.name] = Value::function(node.name, [this, macro, closure](Args& args) {
      return call_macro(*macro, closure, args);
    });
    return Flow::kNormal;
  }

  Flow exec_node(const ScopeStmt& node, int, std::string& out) {
    ScopeGuard guard(*this, scope_);
    return exec_body(node.body, out);
  }

  Flow exec_node(const BreakStmt&, int, std::string&) { return Flow::kBreak; }
  Flow exec_node(const ContinueStmt&, int, std::string&) { return Flow::kContinue; }

  Value call_macro(const MacroStmt& macro, size_t closure, Args& args) {
    if (args.positional.size() > macro.params.size()) {
      eval_fail("macro '{}' takes not more than {} argument(s)", macro.name, macro.params.size());
    }
    if (macro_depth_ >= kMaxMacroDepth) {
      eval_fail("macro '{}': maximum recursion depth ({}) exceeded", macro.name, kMaxMacroDepth);
    }
    charge(kMacroCallWork);
    ++macro_depth_;
    struct DepthGuard {
      int& depth;
      ~DepthGuard() { --depth; }
    } depth_guard{macro_depth_};
    ScopeGuard guard(*this, closures_[closure]);
    for (const auto& [key, value] : args.keyword) {
      bool known = false;
      for (const MacroParam& p : macro.params) known = known || p.name == key;
      if (!known) eval_fail("macro '{}' takes no keyword argument '{}'", macro.name, key);
    }
    for (size_t i = 0; i < macro.params.size(); ++i) {
      const MacroParam& p = macro.params[i];
      std::optional<Value> v;
      if (i < args.positional.size()) v = args.positional[i];
      for (const auto& [key, value] : args.keyword) {
        if (key != p.name) continue;
        if (v) eval_fail("macro '{}' got multiple values for argument '{}'", macro.name, key);
        v = value;
      }
      if (!v) {
        v = p.default_value
                ? eval(*p.default_value)
                : Value::undefined(fmt::format("parameter '{}' was not provided", p.name));
      }
      scope_->vars[p.name] = std::move(*v);
    }
    std::string out;
    exec_body(macro.body, out);
    return Value(std::move(out));
  }

  Value loop_object(const std::vector<Value>& items, int64_t i,
                    std::optional<Value>& changed_state) {
    const auto n = static_cast<int64_t>(items.size());
    auto loop = std::make_shared<Object>();
    loop->type_name = "LoopContext";
    Dict& a = loop->attrs;
    a.append_new("index", Value(i + 1));
    a.append_new("index0", Value(i));
    a.append_new("revindex", Value(n - i));
    a.append_new("revindex0", Value(n - i - 1));
    a.append_new("first", Value(i == 0));
    a.append_new("last", Value(i == n - 1));
    a.append_new("length", Value(n));
    a.append_new("depth", Value(1));
    a.append_new("depth0", Value(0));
    a.append_new("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    a.append_new("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
    a.append_new("cycle", Value::function("cycle", [i](Args& args) {
                   if (args.positional.empty()) eval_fail("no items for cycling given");
                   return args.positional[static_cast<size_t>(i) % args.positional.size()];
                 }));
    a.append_new("changed", Value::function("changed", [state = &changed_state](Args& args) {
                   Value current = Value::list(args.positional);
                   if (*state && equals(**state, current)) return Value(false);
                   *state = std::move(current);
                   return Value(true);
                 }));
    return Value::object(std::move(loop));
  }

  void assign(const Target& target, Value value, int line) {
    if (!target.attribute.empty()) {
      const Value obj = lookup(target.names[0]);
      if (!obj.is_object() || !obj.as_object().assignable) {
        fail_at(name_, line, "cannot assign attribute '{}' on '{}': it is not a namespace()",
                target.attribute, target.names[0]);
      }
      obj.as_object().attrs.set(target.attribute, std::move(value));
      return;
    }
    if (!target.unpack) {
      scope_->vars[target.names[0]] = std::move(value);
      return;
    }
    const std::vector<Value> parts = value.is_list() ? value.as_list() : iterate(value);
    if (parts.size() < target.names.size()) {
      eval_fail("not enough values to unpack (expected {}, got {})", target.names.size(),
                parts.size());
    }
    if (parts.size() > target.names.size()) {
      eval_fail("too many values to unpack (expected {})", target.names.size());
    }
    for (size_t i = 0; i < parts.size(); ++i) scope_->vars[target.names[i]] = parts[i];
  }

  Value lookup(const std::string& name) const {
    for (const Scope* s = scope_.get(); s; s = s->parent.get()) {
      if (auto it = s->vars.find(name); it != s->vars.end()) return it->second;
    }
    if (name == "namespace") return namespace_;
    if (const Value* v = builtin_globals().find(name)) return *v;
    return Value::undefined(fmt::format("'{}' is undefined", name));
  }

  Value apply_filters(Value v, const std::vector<FilterCall>& filters) {
    for (const FilterCall& f : filters) {
      Args args = eval_args(f.args);
      try {
        v = f.fn(v, args);
      } catch (const EvalError& e) {
        fail_at(name_, f.line, "{}", e.what());
      }
    }
    return v;
  }

  Args eval_args(const CallArgsExpr& args) {
    Args out;
    out.positional.reserve(args.positional.size());
    for (const ExprPtr& e : args.positional) out.positional.push_back(eval(*e));
    for (const auto& [k, e] : args.keyword) out.keyword.emplace_back(k, eval(*e));
    return out;
  }

  Value eval(const Expr& e) {
    try {
      Value v = std::visit([&](const auto& node) { return eval_node(node, e.line); }, e.node);
      charge(cost_of(v));
      return v;
    } catch (const EvalError& err) {
      fail_at(name_, e.line, "{}", err.what());
    }
  }

  Value eval_node(const LiteralExpr& node, int) { return node.value; }
  Value eval_node(const NameExpr& node, int) { return lookup(node.name); }

  Value eval_node(const ListExpr& node, int) {
    std::vector<Value> items;
    items.reserve(node.items.size());
    for (const ExprPtr& e : node.items) items.push_back(eval(*e));
    return node.tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }

  Value eval_node(const DictExpr& node, int) {
    Dict d;
    for (const auto& [k, v] : node.items) {
      const Value key = eval(*k);
      if (!key.is_string()) eval_fail("dict keys must be strings, not {}", type_name(key));
      d.set(key.as_string(), eval(*v));
    }
    return Value::dict(std::move(d));
  }

  Value eval_node(const AttrExpr& node, int) { return get_attr(eval(*node.object), node.name); }
  Value eval_node(const ItemExpr& node, int) {
    return get_item(eval(*node.object), eval(*node.index));
  }

  Value eval_node(const SliceExpr& node, int) {
    const Value obj = eval(*node.object);
    auto bound = [&](const ExprPtr& e) { return e ? eval(*e) : Value::none(); };
    return get_slice(obj, bound(node.start), bound(node.stop), bound(node.step));
  }

  Value eval_node(const UnaryExpr& node, int) {
    const Value v = eval(*node.operand);
    switch (node.op) {
      case UnaryOp::kNot:
        return !truthy(v);
      case UnaryOp::kNeg:
        return negate(v);
      case UnaryOp::kPos:
        return unary_plus(v);
    }
    return Value();
  }

  Value eval_node(const BinaryExpr& node, int) {
    const Value left = eval(*node.left);
    return binary_op(node.op, left, eval(*node.right));
  }

  Value eval_node(const ConcatExpr& node, int) {
    std::string out;
    for (const ExprPtr& e : node.parts) append_bounded(out, to_str(eval(*e)));
    return out;
  }

  Value eval_node(const LogicExpr& node, int) {
    Value left = eval(*node.left);
    const bool t = truthy(left);
    if (node.op == LogicOp::kAnd ? !t : t) return left;
    return eval(*node.right);
  }

  Value eval_node(const CompareExpr& node, int) {
    Value left = eval(*node.first);
    for (const auto& [op, e] : node.rest) {
      Value right = eval(*e);
      bool ok = false;
      switch (op) {
        case CompareOp::kEq:
          ok = equals(left, right);
          break;
        case CompareOp::kNe:
          ok = !equals(left, right);
          break;
        case CompareOp::kLt:
          ok = compare(left, right, "<") < 0;
          break;
        case CompareOp::kLe:
          ok = compare(left, right, "<=") <= 0;
          break;
        case CompareOp::kGt:
          ok = compare(left, right, ">") > 0;
          break;
        case CompareOp::kGe:
          ok = compare(left, right, ">=") >= 0;
          break;
        case CompareOp::kIn:
          ok = contains(right, left);
          break;
        case CompareOp::kNotIn:
          ok = !contains(right, left);
          break;
      }
      if (!ok) return false;
      left = std::move(right);
    }
    return true;
  }

  Value eval_node(const CondExpr& node, int line) {
    if (truthy(eval(*node.cond))) return eval(*node.then);
    if (node.otherwise) return eval(*node.otherwise);
    return Value::undefined(fmt::format(
        "the inline if-expression on line {} evaluated to false and no else section was defined",
        line));
  }

  Value eval_node(const CallExpr& node, int) {
    const Value callee = eval(*node.callee);
    Args args = eval_args(node.args);
    require_defined(callee);
    if (!callee.is_callable()) eval_fail("'{}' object is not callable", type_name(callee));
    return callee.as_callable().fn(args);
  }

  Value eval_node(const FilterExpr& node, int) {
    const Value input = eval(*node.operand);
    Args args = eval_args(node.args);
    return node.fn(input, args);
  }

  Value eval_node(const TestExpr& node, int) {
    const Value input = eval(*node.operand);
    Args args = eval_args(node.args);
    return node.fn(input, args) != node.negated;
  }

  // namespace(), remembering what it made for ~Interpreter.
  Value new_namespace(const Args& args) {
    std::shared_ptr<Object> ns = make_namespace(args);
    namespaces_.push_back(ns);
    return Value::object(std::move(ns));
  }

  const std::string& name_;
  std::shared_ptr<Scope> scope_;
  int macro_depth_ = 0;
  int64_t work_ = 0;
  std::vector<std::shared_ptr<Scope>> closures_;     // the scopes macros were defined in
  std::deque<std::optional<Value>> changed_states_;  // loop.changed()'s last arguments, per loop
  const Value namespace_;
  std::vector<std::weak_ptr<Object>> namespaces_;  // made by this render
};

}  // namespace

std::string render(const Body& body, const Dict& variables, const std::string& template_name) {
  std::string out;
  Interpreter(variables, template_name).run(body, out);
  return out;
}

}  // namespace fp8llm::jinja
