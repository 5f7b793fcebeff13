// Binds a builtin's call arguments (positional, then keyword) to its named parameters the way
// Python does, with Python-like messages for a wrong call.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/jinja/value.h"

namespace fp8llm::jinja {

class BoundArgs {
 public:
  // `params` in order; the first `required` of them must be given.
  BoundArgs(std::string_view function, const Args& args,
            std::initializer_list<std::string_view> params, size_t required = 0);

  bool has(size_t i) const { return values_[i].has_value(); }
  const Value& get(size_t i) const { return *values_[i]; }
  Value get_or(size_t i, Value fallback) const { return has(i) ? get(i) : std::move(fallback); }

  // Typed access; absent gives the fallback, a value of the wrong type fails naming the parameter.
  int64_t int_or(size_t i, int64_t fallback) const;
  bool bool_or(size_t i, bool fallback) const;  // any value, by truthiness
  std::string string_or(size_t i, std::string fallback) const;
  std::string string(size_t i) const;  // required string
  // Absent or None gives nullopt.
  std::optional<std::string> optional_string(size_t i) const;

 private:
  [[noreturn]] void wrong_type(size_t i, std::string_view expected) const;

  std::string function_;
  std::vector<std::string_view> names_;
  std::vector<std::optional<Value>> values_;
};

}  // namespace fp8llm::jinja
