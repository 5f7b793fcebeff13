// Renders a parsed template: runs statements and evaluates expressions with jinja2's scoping
// (each for-loop iteration, macro call, filter block and block set gets its own scope, `if`
// does not; `set` writes to the innermost scope).
#pragma once

#include <string>

#include "text/jinja/ast.h"
#include "text/jinja/value.h"

namespace fp8llm::jinja {

// Errors (including raise_exception from the template) name `template_name` and the line.
// Macros and namespaces made while rendering belong to the render and are freed when it returns
// (or throws); they cannot reach the caller, who sees only the text.
std::string render(const Body& body, const Dict& variables, const std::string& template_name);

}  // namespace fp8llm::jinja
