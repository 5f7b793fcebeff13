#include "text/jinja/predicates.h"

#include <algorithm>

#include "text/jinja/bound_args.h"
#include "text/jinja/eval_error.h"
#include "text/jinja/operations.h"
#include "text/jinja/python_str.h"

namespace fp8llm::jinja {
namespace {

// For predicates that take no argument.
void no_args(const char* name, const Args& args) {
  (void)BoundArgs(name, args, {});
}

bool is_even_or_odd(const Value& v, bool even) {
  const Value rem = binary_op(BinaryOp::kMod, v, Value(2));
  return equals(rem, Value(0)) == even;
}

bool compare_test(const Value& v, const Args& args, const char* name, std::string_view op) {
  BoundArgs a(name, args, {"other"}, 1);
  const int c = compare(v, a.get(0), op);
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

struct NamedTest {
  std::string_view name;
  TestFunction fn;
};

const NamedTest kTests[] = {
    {"defined",
     [](const Value& v, const Args& args) {
       no_args("defined", args);
       return !v.is_undefined();
     }},
    {"undefined",
     [](const Value& v, const Args& args) {
       no_args("undefined", args);
       return v.is_undefined();
     }},
    {"none",
     [](const Value& v, const Args& args) {
       no_args("none", args);
       return v.is_none();
     }},
    {"boolean",
     [](const Value& v, const Args& args) {
       no_args("boolean", args);
       return v.is_bool();
     }},
    {"true",
     [](const Value& v, const Args& args) {
       no_args("true", args);
       return v.is_bool() && v.as_bool();
     }},
    {"false",
     [](const Value& v, const Args& args) {
       no_args("false", args);
       return v.is_bool() && !v.as_bool();
     }},
    {"integer",
     [](const Value& v, const Args& args) {
       no_args("integer", args);
       return v.is_int();
     }},
    {"float",
     [](const Value& v, const Args& args) {
       no_args("float", args);
       return v.is_float();
     }},
    {"number",
     [](const Value& v, const Args& args) {
       no_args("number", args);
       return v.is_number();
     }},
    {"string",
     [](const Value& v, const Args& args) {
       no_args("string", args);
       return v.is_string();
     }},
    {"mapping",
     [](const Value& v, const Args& args) {
       no_args("mapping", args);
       return v.is_dict();
     }},
    // jinja2's Undefined can be iterated (it is empty) and has len(), hence counts as both.
    {"iterable",
     [](const Value& v, const Args& args) {
       no_args("iterable", args);
       return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
     }},
    {"sequence",
     [](const Value& v, const Args& args) {
       no_args("sequence", args);
       return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
     }},
    {"callable",
     [](const Value& v, const Args& args) {
       no_args("callable", args);
       return v.is_callable();
     }},
    {"sameas",
     [](const Value& v, const Args& args) {
       BoundArgs a("sameas", args, {"other"}, 1);
       const Value& o = a.get(0);
       if (v.identity() || o.identity()) return v.identity() == o.identity();
       // Python's small values (None, booleans) are singletons.
       return v.kind() == o.kind() && (v.is_none() || (v.is_bool() && v.as_bool() == o.as_bool()));
     }},
    {"lower",
     [](const Value& v, const Args& args) {
       no_args("lower", args);
       const std::u32string t = py::decode(to_str(v));
       return std::any_of(t.begin(), t.end(), py::is_lower) &&
              std::none_of(t.begin(), t.end(), py::is_upper);
     }},
    {"upper",
     [](const Value& v, const Args& args) {
       no_args("upper", args);
       const std::u32string t = py::decode(to_str(v));
       return std::any_of(t.begin(), t.end(), py::is_upper) &&
              std::none_of(t.begin(), t.end(), py::is_lower);
     }},
    {"even",
     [](const Value& v, const Args& args) {
       no_args("even", args);
       return is_even_or_odd(v, true);
     }},
    {"odd",
     [](const Value& v, const Args& args) {
       no_args("odd", args);
       return is_even_or_odd(v, false);
     }},
    {"divisibleby",
     [](const Value& v, const Args& args) {
       BoundArgs a("divisibleby", args, {"num"}, 1);
       return equals(binary_op(BinaryOp::kMod, v, a.get(0)), Value(0));
     }},
    {"eq",
     [](const Value& v, const Args& args) {
       BoundArgs a("eq", args, {"other"}, 1);
       return equals(v, a.get(0));
     }},
    {"ne",
     [](const Value& v, const Args& args) {
       BoundArgs a("ne", args, {"other"}, 1);
       return !equals(v, a.get(0));
     }},
    {"lt", [](const Value& v, const Args& args) { return compare_test(v, args, "lt", "<"); }},
    {"le", [](const Value& v, const Args& args) { return compare_test(v, args, "le", "<="); }},
    {"gt", [](const Value& v, const Args& args) { return compare_test(v, args, "gt", ">"); }},
    {"ge", [](const Value& v, const Args& args) { return compare_test(v, args, "ge", ">="); }},
    {"in",
     [](const Value& v, const Args& args) {
       BoundArgs a("in", args, {"seq"}, 1);
       return contains(a.get(0), v);
     }},
    // Values are never markup-escaped: autoescaping is off for chat templates.
    {"escaped",
     [](const Value&, const Args& args) {
       no_args("escaped", args);
       return false;
     }},
};

struct Alias {
  std::string_view alias;
  std::string_view name;
};

const Alias kAliases[] = {{"equalto", "eq"},     {"==", "eq"}, {"!=", "ne"},
                          {"lessthan", "lt"},    {"<", "lt"},  {"<=", "le"},
                          {"greaterthan", "gt"}, {">", "gt"},  {">=", "ge"}};

}  // namespace

TestFunction find_test(std::string_view name) {
  for (const auto& a : kAliases) {
    if (a.alias == name) name = a.name;
  }
  for (const auto& t : kTests) {
    if (t.name == name) return t.fn;
  }
  return nullptr;
}

}  // namespace fp8llm::jinja
