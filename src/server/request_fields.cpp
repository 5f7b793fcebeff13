#include "server/request_fields.h"

#include "server/api_error.h"

namespace fp8llm::server {

bool flag(const nlohmann::ordered_json& body, const char* name, bool fallback) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) bad_request(name, "{}: expected true or false, got {}", name, it->dump());
  return it->get<bool>();
}

void check_known_fields(const nlohmann::ordered_json& body,
                        const std::set<std::string, std::less<>>& known, std::string_view path) {
  for (const auto& [key, value] : body.items())
    if (!known.contains(key)) bad_request(key, "{}: not a field of {} requests", key, path);
}

}  // namespace fp8llm::server
