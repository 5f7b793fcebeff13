// Operators, attribute and item access, slicing and iteration, with the semantics that Python
// gives them inside jinja2's sandbox (e.g. a missing key is Undefined, not an error).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "text/jinja/value.h"

namespace fp8llm::jinja {

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };

Value binary_op(BinaryOp op, const Value& a, const Value& b);
Value negate(const Value& v);
Value unary_plus(const Value& v);

// `item in container`.
bool contains(const Value& container, const Value& item);

// `obj.name`: a method or attribute first, then the item `name` (jinja2's getattr).
Value get_attr(const Value& obj, std::string_view name);
// `obj[key]`: the item first, then for string keys the attribute (jinja2's getitem).
Value get_item(const Value& obj, const Value& key);
// `obj[start:stop:step]`; absent bounds are None or Undefined.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// The items a for loop visits: a string's characters, a list's items, a dict's keys; nothing
// for Undefined.
std::vector<Value> iterate(const Value& v);
// len(v); 0 for Undefined.
int64_t length(const Value& v);

// Fails with an Undefined's own message ("'x' is undefined") when `v` is Undefined.
void require_defined(const Value& v);

}  // namespace fp8llm::jinja
