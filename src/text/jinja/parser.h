// Builds the statement tree from tokens, following jinja2's grammar and operator precedence
// (including its quirks: filters bind tighter than arithmetic, `~` tighter than `+`, `**` is
// left-associative).
#pragma once

#include <string>
#include <vector>

#include "text/jinja/ast.h"
#include "text/jinja/lexer.h"

namespace fp8llm::jinja {

// Errors name `template_name`, the line and the construct, e.g. "unsupported statement 'include'".
Body parse(const std::vector<Token>& tokens, const std::string& template_name);

}  // namespace fp8llm::jinja
