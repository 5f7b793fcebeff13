#include "core/json_view.h"

#include <limits>

namespace fp8llm {
namespace {

const nlohmann::json& null_json() {
  static const nlohmann::json null_value;
  return null_value;
}

}  // namespace

std::string JsonView::where() const {
  return path_.empty() ? file_ : fmt::format("{}: {}", file_, path_);
}

std::string JsonView::member_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

bool JsonView::contains(std::string_view key) const {
  return value_->is_object() && value_->find(key) != value_->end();
}

bool JsonView::has(std::string_view key) const {
  if (!value_->is_object()) return false;
  const auto it = value_->find(key);
  return it != value_->end() && !it->is_null();
}

JsonView JsonView::operator[](std::string_view key) const {
  as_object();
  const auto it = value_->find(key);
  const JsonView m(it == value_->end() ? null_json() : *it, file_, member_path(key));
  if (m.is_null()) m.fail("missing");
  return m;
}

std::optional<JsonView> JsonView::find(std::string_view key) const {
  as_object();
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return JsonView(*it, file_, member_path(key));
}

JsonView JsonView::member(std::string_view key) const {
  if (value_->is_object()) {
    const auto it = value_->find(key);
    if (it != value_->end()) return JsonView(*it, file_, member_path(key));
  }
  return JsonView(null_json(), file_, member_path(key));
}

JsonView JsonView::operator[](size_t i) const {
  const auto& array = as_array();
  if (i >= array.size()) fail("has no element {} (it has {})", i, array.size());
  return JsonView(array[i], file_, fmt::format("{}[{}]", path_, i));
}

JsonView JsonView::child(std::string_view key, const nlohmann::json& value) const {
  return JsonView(value, file_, member_path(key));
}

std::string JsonView::brief() const {
  std::string text = value_->dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

void JsonView::expected(std::string_view what) const {
  fail("expected {}, got {}", what, brief());
}

std::string JsonView::as_string() const {
  if (!value_->is_string()) expected("a string");
  return value_->get<std::string>();
}

bool JsonView::as_bool() const {
  if (!value_->is_boolean()) expected("true or false");
  return value_->get<bool>();
}

int64_t JsonView::as_int() const {
  if (!value_->is_number_integer()) expected("an integer");
  if (value_->is_number_unsigned() &&
      value_->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail("{} is out of range", brief());
  }
  return value_->get<int64_t>();
}

double JsonView::as_number() const {
  if (!value_->is_number()) expected("a number");
  return value_->get<double>();
}

const nlohmann::json::object_t& JsonView::as_object() const {
  if (!value_->is_object()) expected("an object");
  return value_->get_ref<const nlohmann::json::object_t&>();
}

const nlohmann::json::array_t& JsonView::as_array() const {
  if (!value_->is_array()) expected("an array");
  return value_->get_ref<const nlohmann::json::array_t&>();
}

bool JsonView::bool_or(std::string_view key, bool fallback) const {
  const auto v = find(key);
  return v ? v->as_bool() : fallback;
}

std::optional<std::string> JsonView::optional_string(std::string_view key) const {
  const auto v = find(key);
  if (!v) return std::nullopt;
  return v->as_string();
}

}  // namespace fp8llm
