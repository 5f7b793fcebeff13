// Reads of a parsed JSON document whose errors name the file and the value's place in it:
// "config.json: rope_scaling.factor: expected a positive number, got \"8\"". Every reader of a
// user's JSON file (config.json, tokenizer.json, quantization configs) goes through it, so that
// they all report the same way.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace fp8llm {

// A JSON value with the name of its document and its path there ("model.merges[3]"; "" for the
// document itself). Copies are cheap enough to pass by value; the value must outlive the view.
class JsonView {
 public:
  JsonView(const nlohmann::json& value, std::string file, std::string path = "")
      : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

  const nlohmann::json& json() const { return *value_; }
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  // "<file>: <path>", or the file alone for the document itself.
  std::string where() const;

  bool is_null() const { return value_->is_null(); }
  // True when this is an object with member `key` (possibly null).
  bool contains(std::string_view key) const;
  // True when this is an object with member `key` and the member is not null.
  bool has(std::string_view key) const;

  // The member `key`; absent or null (which transformers treats as "not set") is an error, as is
  // this not being an object.
  JsonView operator[](std::string_view key) const;
  // The member `key`, or nullopt when it is absent or null; an error when this is not an object.
  std::optional<JsonView> find(std::string_view key) const;
  // The member `key` as it is, a null view when absent or when this is not an object: for checks
  // that treat absent and null alike.
  JsonView member(std::string_view key) const;
  // Element `i` of this array; an error when this is not an array or has no such element.
  JsonView operator[](size_t i) const;
  // A view of `value` (one of this object's members, met while iterating) named `key` here.
  JsonView child(std::string_view key, const nlohmann::json& value) const;

  // Typed reads: a value of another kind is an error "expected ..., got <the value>".
  std::string as_string() const;
  bool as_bool() const;
  int64_t as_int() const;
  double as_number() const;
  const nlohmann::json::object_t& as_object() const;
  const nlohmann::json::array_t& as_array() const;

  // Optional members with defaults (absent or null: the default).
  bool bool_or(std::string_view key, bool fallback) const;
  std::optional<std::string> optional_string(std::string_view key) const;

  // The value as compact JSON, shortened to about 60 characters for messages.
  std::string brief() const;

  // Throws fp8llm::Error "<file>: <path>: <message>" ("<file>: <message>" for the document).
  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
    ::fp8llm::fail("{}: {}", where(), fmt::format(format, std::forward<Args>(args)...));
  }
  // Throws "<file>: <path>: expected <what>, got <the value>".
  [[noreturn]] void expected(std::string_view what) const;

 private:
  std::string member_path(std::string_view key) const;

  const nlohmann::json* value_;
  std::string file_;
  std::string path_;
};

}  // namespace fp8llm
