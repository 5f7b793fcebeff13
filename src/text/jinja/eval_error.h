// Errors raised while evaluating a template, before they are tied to a template line.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "core/error.h"

namespace fp8llm::jinja {

// Thrown by value operations, filters and builtins, which do not know where in the template they
// were called from. The interpreter catches it at the innermost expression and rethrows it as an
// fp8llm::Error naming the template and line.
class EvalError : public std::runtime_error {
 public:
  explicit EvalError(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void eval_fail(fmt::format_string<Args...> format, Args&&... args) {
  throw EvalError(fmt::format(format, std::forward<Args>(args)...));
}

// "<template name> line <line>: <message>", the form of every template error the user sees.
template <typename... Args>
[[noreturn]] void fail_at(const std::string& template_name, int line,
                          fmt::format_string<Args...> format, Args&&... args) {
  fail("{} line {}: {}", template_name, line, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace fp8llm::jinja
