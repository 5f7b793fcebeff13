#include "text/jinja/globals.h"

#include <memory>

#include "text/jinja/bound_args.h"
#include "text/jinja/eval_error.h"
#include "text/jinja/limits.h"
#include "text/jinja/operations.h"

namespace fp8llm::jinja {
namespace {

// dict(mapping_or_pairs, **kwargs), Python's dict() constructor.
Dict dict_from_args(const char* name, const Args& args) {
  if (args.positional.size() > 1) {
    eval_fail("{} expected at most 1 argument, got {}", name, args.positional.size());
  }
  Dict d;
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      d = source.as_dict();
    } else {
      for (const Value& pair : iterate(source)) {
        if (!pair.is_list() || pair.as_list().size() != 2 || !pair.as_list()[0].is_string()) {
          eval_fail("{}: expected a mapping or a sequence of (string key, value) pairs", name);
        }
        d.set(pair.as_list()[0].as_string(), pair.as_list()[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) d.set(k, v);
  return d;
}

Value range(Args& args) {
  if (args.positional.empty() || args.positional.size() > 3 || !args.keyword.empty()) {
    eval_fail("range() takes 1 to 3 positional arguments");
  }
  for (const Value& v : args.positional) {
    if (!v.is_integral())
      eval_fail("range(): '{}' object cannot be interpreted as an integer", type_name(v));
  }
  const auto& p = args.positional;
  const int64_t start = p.size() == 1 ? 0 : p[0].as_int();
  const int64_t stop = p.size() == 1 ? p[0].as_int() : p[1].as_int();
  const int64_t step = p.size() == 3 ? p[2].as_int() : 1;
  if (step == 0) eval_fail("range() arg 3 must not be zero");
  std::vector<Value> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange) {
      eval_fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange);
    }
    out.emplace_back(i);
    if (__builtin_add_overflow(i, step, &i)) break;
  }
  return Value::list(std::move(out));
}

}  // namespace

std::shared_ptr<Object> make_namespace(const Args& args) {
  auto ns = std::make_shared<Object>();
  ns->type_name = "Namespace";
  ns->assignable = true;
  ns->attrs = dict_from_args("namespace", args);
  return ns;
}

const Dict& builtin_globals() {
  static const Dict globals = [] {
    Dict d;
    d.set("range", Value::function("range", range));
    d.set("dict", Value::function("dict", [](Args& args) {
            return Value::dict(dict_from_args("dict", args));
          }));
    return d;
  }();
  return globals;
}

}  // namespace fp8llm::jinja
