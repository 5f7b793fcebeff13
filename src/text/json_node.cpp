#include "text/json_node.h"

namespace fp8llm {

std::string JsonNode::member_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

std::string JsonNode::kind() const {
  return value_->type_name();
}

bool JsonNode::has(std::string_view key) const {
  if (!value_->is_object()) return false;
  const auto it = value_->find(key);
  return it != value_->end() && !it->is_null();
}

JsonNode JsonNode::operator[](std::string_view key) const {
  as_object();
  const auto it = value_->find(key);
  if (it == value_->end()) ::fp8llm::fail("{}: {} is missing", file_, member_path(key));
  return JsonNode(*it, file_, member_path(key));
}

std::optional<JsonNode> JsonNode::get(std::string_view key) const {
  as_object();
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return JsonNode(*it, file_, member_path(key));
}

JsonNode JsonNode::operator[](size_t i) const {
  const auto& array = as_array();
  if (i >= array.size()) fail("has no element {} (it has {})", i, array.size());
  return JsonNode(array[i], file_, fmt::format("{}[{}]", path_, i));
}

JsonNode JsonNode::child(std::string_view key, const nlohmann::json& value) const {
  return JsonNode(value, file_, member_path(key));
}

std::string JsonNode::as_string() const {
  if (!value_->is_string()) fail("must be a string, not {}", kind());
  return value_->get<std::string>();
}

bool JsonNode::as_bool() const {
  if (!value_->is_boolean()) fail("must be true or false, not {}", kind());
  return value_->get<bool>();
}

int64_t JsonNode::as_int() const {
  if (!value_->is_number_integer()) fail("must be an integer, not {}", kind());
  return value_->get<int64_t>();
}

const nlohmann::json::object_t& JsonNode::as_object() const {
  if (!value_->is_object()) fail("must be an object, not {}", kind());
  return value_->get_ref<const nlohmann::json::object_t&>();
}

const nlohmann::json::array_t& JsonNode::as_array() const {
  if (!value_->is_array()) fail("must be an array, not {}", kind());
  return value_->get_ref<const nlohmann::json::array_t&>();
}

bool JsonNode::bool_or(std::string_view key, bool fallback) const {
  const auto node = get(key);
  return node ? node->as_bool() : fallback;
}

std::optional<std::string> JsonNode::optional_string(std::string_view key) const {
  const auto node = get(key);
  if (!node) return std::nullopt;
  return node->as_string();
}

}  // namespace fp8llm
