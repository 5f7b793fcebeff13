// Functions every template can call: range(), dict() and namespace().
#pragma once

#include <memory>

#include "text/jinja/value.h"

namespace fp8llm::jinja {

// range() and dict(), looked up after the template's own variables. They are shared by every
// render; namespace() is not among them because each render keeps track of the namespaces it made.
const Dict& builtin_globals();

// namespace(**attrs): the mutable object that templates use to carry state out of a for loop.
std::shared_ptr<Object> make_namespace(const Args& args);

}  // namespace fp8llm::jinja
