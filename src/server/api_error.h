// What a failed API request gets back, as OpenAI's API writes it: an HTTP status and
// {"error": {"message", "type", "param", "code"}}. `param` names the request field at fault.
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace fp8llm::server {

class ApiError : public Error {
 public:
  ApiError(int status, const std::string& message, std::string param = {}, std::string code = {});
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  // OpenAI's error type for the status: invalid_request_error, authentication_error, ...
  std::string type() const;

 private:
  int status_;
  std::string param_;
  std::string code_;
};

// A 400 naming `param` (the message starts with it, as every fp8llm error names its field).
template <typename... Args>
[[noreturn]] void bad_request(const std::string& param, fmt::format_string<Args...> f,
                              Args&&... args) {
  throw ApiError(400, fmt::format(f, std::forward<Args>(args)...), param);
}

// An fp8llm::Error from the engine or the sampling parser as a 400: its message, and as `param`
// the field it starts with when that is one of `fields` (their messages begin "field: ..." or
// "field must ...").
ApiError request_error(const Error& e, const std::vector<std::string>& fields);

// The JSON body of an error response (one line).
std::string error_body(const ApiError& e);

}  // namespace fp8llm::server
