#include "text/jinja/bound_args.h"

#include "text/jinja/eval_error.h"

namespace fp8llm::jinja {

BoundArgs::BoundArgs(std::string_view function, const Args& args,
                     std::initializer_list<std::string_view> params, size_t required)
    : function_(function), names_(params), values_(params.size()) {
  if (args.positional.size() > names_.size()) {
    eval_fail("{}() takes at most {} argument{} ({} given)", function_, names_.size(),
              names_.size() == 1 ? "" : "s", args.positional.size());
  }
  for (size_t i = 0; i < args.positional.size(); ++i) values_[i] = args.positional[i];
  for (const auto& [name, value] : args.keyword) {
    size_t i = 0;
    while (i < names_.size() && names_[i] != name) ++i;
    if (i == names_.size()) {
      eval_fail("{}() got an unexpected keyword argument '{}'", function_, name);
    }
    if (values_[i]) eval_fail("{}() got multiple values for argument '{}'", function_, name);
    values_[i] = value;
  }
  for (size_t i = 0; i < required; ++i) {
    if (!values_[i]) eval_fail("{}() missing required argument '{}'", function_, names_[i]);
  }
}

void BoundArgs::wrong_type(size_t i, std::string_view expected) const {
  eval_fail("{}(): argument '{}' must be {}, not {}", function_, names_[i], expected,
            type_name(get(i)));
}

int64_t BoundArgs::int_or(size_t i, int64_t fallback) const {
  if (!has(i)) return fallback;
  if (!get(i).is_integral()) wrong_type(i, "an integer");
  return get(i).as_int();
}

bool BoundArgs::bool_or(size_t i, bool fallback) const {
  return has(i) ? truthy(get(i)) : fallback;
}

std::string BoundArgs::string_or(size_t i, std::string fallback) const {
  if (!has(i)) return fallback;
  if (!get(i).is_string()) wrong_type(i, "a string");
  return get(i).as_string();
}

std::string BoundArgs::string(size_t i) const {
  if (!get(i).is_string()) wrong_type(i, "a string");
  return get(i).as_string();
}

std::optional<std::string> BoundArgs::optional_string(size_t i) const {
  if (!has(i) || get(i).is_none()) return std::nullopt;
  if (!get(i).is_string()) wrong_type(i, "None or a string");
  return get(i).as_string();
}

}  // namespace fp8llm::jinja
