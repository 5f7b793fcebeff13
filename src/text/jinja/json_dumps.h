// Python's json.dumps, which is what chat templates' `tojson` filter produces in Hugging Face
// transformers (ensure_ascii=False by default, indent/separators/sort_keys as in Python).
#pragma once

#include <optional>
#include <string>

#include "text/jinja/value.h"

namespace fp8llm::jinja {

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // absent: one line; present: newline + indent per level
  std::optional<std::string> item_separator;  // default ", " (one line) or "," (indented)
  std::string key_separator = ": ";
  bool sort_keys = false;
};

std::string json_dumps(const Value& v, const JsonDumpOptions& options = {});

}  // namespace fp8llm::jinja
