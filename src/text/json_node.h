// Typed access to a parsed tokenizer.json / tokenizer_config.json whose errors name the file and
// the field: "tokenizer.json: model.merges[3] must be ...".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace fp8llm {

class JsonNode {
 public:
  // `file` is how errors name the document; `path` is this node's place in it ("" for the root).
  JsonNode(const nlohmann::json& value, std::string file, std::string path = "")
      : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

  const nlohmann::json& json() const { return *value_; }
  const std::string& file() const { return file_; }
  // "model.vocab", or "(root)" for the document itself.
  std::string path() const { return path_.empty() ? "(root)" : path_; }

  bool is_null() const { return value_->is_null(); }
  // True when this object has `key` with a non-null value.
  bool has(std::string_view key) const;

  // The member `key`; a missing member (or a non-object here) is an error naming the field.
  JsonNode operator[](std::string_view key) const;
  // The member `key`, or nullopt when it is absent or null.
  std::optional<JsonNode> get(std::string_view key) const;
  // Element `i` of this array.
  JsonNode operator[](size_t i) const;
  JsonNode child(std::string_view key, const nlohmann::json& value) const;

  std::string as_string() const;
  bool as_bool() const;
  int64_t as_int() const;
  // Checks the kind of this node, naming the expected one on mismatch.
  const nlohmann::json::object_t& as_object() const;
  const nlohmann::json::array_t& as_array() const;

  // Optional members with defaults.
  bool bool_or(std::string_view key, bool fallback) const;
  std::optional<std::string> optional_string(std::string_view key) const;

  // Throws fp8llm::Error "<file>: <path> <message>".
  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
    ::fp8llm::fail("{}: {} {}", file_, path(), fmt::format(format, std::forward<Args>(args)...));
  }

 private:
  std::string member_path(std::string_view key) const;
  std::string kind() const;

  const nlohmann::json* value_;
  std::string file_;
  std::string path_;
};

}  // namespace fp8llm
