// Errors that reach the user: one line, naming the file, tensor or field at fault.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace fp8llm {

// A problem with the input the user gave us (a file, a flag, a request). The CLI prints the message
// and exits with code 2; the server answers 4xx. Anything else thrown is a bug.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Check a condition on user input; the message is formatted only when it fails.
#define FP8LLM_CHECK(cond, ...)               \
  do {                                        \
    if (!(cond)) ::fp8llm::fail(__VA_ARGS__); \
  } while (0)

}  // namespace fp8llm
