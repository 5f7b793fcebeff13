// Functions every template can call: range(), dict() and namespace().
#pragma once

#include "tokenizer/jinja/value.h"

namespace fp8llm::jinja {

// The builtin globals, looked up after the template's own variables.
const Dict& builtin_globals();

// namespace(**attrs): the mutable object that templates use to carry state out of a for loop.
Value make_namespace(const Args& args);

}  // namespace fp8llm::jinja
