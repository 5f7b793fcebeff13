// Methods of strings, dicts and lists that templates call (`content.strip()`,
// `message.get('x')`): the read-only ones of Python's str, dict and list.
#pragma once

#include <optional>
#include <string_view>

#include "text/jinja/value.h"

namespace fp8llm::jinja {

// The method `name` of `receiver`, bound to it, or nullopt if it has none by that name.
std::optional<Value> find_method(const Value& receiver, std::string_view name);

}  // namespace fp8llm::jinja
