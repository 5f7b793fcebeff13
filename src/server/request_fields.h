// Reading a request body's fields, shared by the OpenAI endpoints and /tokenize, /detokenize:
// every failure is a 400 naming the field (api_error.h).
#pragma once

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <string_view>

namespace fp8llm::server {

// The boolean `name` of `body`, or `fallback` where it is absent or null.
bool flag(const nlohmann::ordered_json& body, const char* name, bool fallback);

// A 400 for the first field of `body` not among `known`: "<field>: not a field of <path>
// requests".
void check_known_fields(const nlohmann::ordered_json& body,
                        const std::set<std::string, std::less<>>& known, std::string_view path);

}  // namespace fp8llm::server
