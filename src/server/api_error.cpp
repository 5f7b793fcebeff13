#include "server/api_error.h"

#include <nlohmann/json.hpp>

#include <cctype>

namespace fp8llm::server {
namespace {

// Error messages are echoed to clients and logged; a value quoted from a huge request body must
// not make them huge too.
constexpr size_t kMaxMessageBytes = 1024;

std::string clipped(std::string message) {
  // what() is a C string: a NUL from the request (a field named "\u0000") would cut it short.
  for (size_t at = message.find('\0'); at != std::string::npos; at = message.find('\0', at))
    message.replace(at, 1, "\\u0000");
  if (message.size() <= kMaxMessageBytes) return message;
  message.resize(kMaxMessageBytes);
  // Never end inside a UTF-8 character.
  while (!message.empty() && (static_cast<unsigned char>(message.back()) & 0xC0) == 0x80)
    message.pop_back();
  if (!message.empty() && static_cast<unsigned char>(message.back()) >= 0xC0) message.pop_back();
  return message + "...";
}

}  // namespace

ApiError::ApiError(int status, const std::string& message, std::string param, std::string code)
    : Error(clipped(message)), status_(status), param_(std::move(param)), code_(std::move(code)) {}

std::string ApiError::type() const {
  if (status_ == 401) return "authentication_error";
  return status_ >= 500 ? "server_error" : "invalid_request_error";
}

ApiError request_error(const Error& e, const std::vector<std::string>& fields) {
  const std::string_view message = e.what();
  size_t n = 0;
  while (n < message.size() &&
         (std::islower(static_cast<unsigned char>(message[n])) || message[n] == '_'))
    ++n;
  const std::string_view head = message.substr(0, n);
  std::string param;
  for (const std::string& f : fields) {
    if (f == head && n < message.size() && (message[n] == ':' || message[n] == ' ')) param = f;
  }
  return ApiError(400, std::string(message), param);
}

std::string error_body(const ApiError& e) {
  using ojson = nlohmann::ordered_json;
  ojson error{{"message", e.what()},
              {"type", e.type()},
              {"param", e.param().empty() ? ojson() : ojson(e.param())},
              {"code", e.code().empty() ? ojson() : ojson(e.code())}};
  return ojson{{"error", std::move(error)}}.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

}  // namespace fp8llm::server
