// Jinja "tests", the right-hand side of `x is defined` / `x is not none`: named predicates.
#pragma once

#include <string_view>

#include "text/jinja/value.h"

namespace fp8llm::jinja {

using TestFunction = bool (*)(const Value& input, const Args& args);

// The test called `name`, or nullptr if there is none.
TestFunction find_test(std::string_view name);

}  // namespace fp8llm::jinja
