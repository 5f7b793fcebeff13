// Filters, the `value | name(args)` functions: jinja2's builtins that chat templates use, with
// `tojson` as Hugging Face transformers defines it (json.dumps, ensure_ascii=False, no HTML
// escaping, keys in their original order unless sort_keys).
#pragma once

#include <string_view>

#include "text/jinja/value.h"

namespace fp8llm::jinja {

using FilterFunction = Value (*)(const Value& input, const Args& args);

// The filter called `name`, or nullptr if there is none.
FilterFunction find_filter(std::string_view name);

}  // namespace fp8llm::jinja
