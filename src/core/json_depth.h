// How deep a parsed JSON value nests, found without recursion. Parsing and destroying a value do
// not recurse (nlohmann keeps its own stacks), but printing, copying and comparing one recurse
// once per level: a hostile file a few megabytes long can nest a million levels and exhaust the
// stack when an error message prints it. Every reader of a user's JSON checks the document first.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace fp8llm {

// Far beyond any document fp8llm reads (a tokenizer.json nests about six levels).
inline constexpr int kMaxJsonDepth = 128;

// Whether `value` nests deeper than `max_depth` levels (a scalar is depth 0, [1] depth 1).
template <typename Json>
bool json_nests_deeper_than(const Json& value, int max_depth) {
  std::vector<std::pair<const Json*, int>> todo{{&value, 0}};
  while (!todo.empty()) {
    const auto [v, depth] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    if (depth + 1 > max_depth) return true;
    for (const Json& child : *v) todo.emplace_back(&child, depth + 1);
  }
  return false;
}

// An Error "<source>: nests deeper than N levels" where it does.
template <typename Json>
void check_json_depth(const Json& value, std::string_view source, int max_depth = kMaxJsonDepth) {
  FP8LLM_CHECK(!json_nests_deeper_than(value, max_depth), "{}: nests deeper than {} levels", source,
               max_depth);
}

}  // namespace fp8llm
