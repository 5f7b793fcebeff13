#include "text/tokenizer_config.h"

#include "core/file_util.h"
#include "core/json_depth.h"
#include "core/json_view.h"

namespace fp8llm {

TokenizerConfig TokenizerConfig::parse(std::string_view json_text, const std::string& name) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {  // a syntax error, or a number out of range
    fail("{}: invalid JSON: {}", name, e.what());
  }
  check_json_depth(doc, name);
  const JsonView root(doc, name);
  root.as_object();
  TokenizerConfig c;
  const auto token = [&](std::string_view key) -> std::optional<std::string> {
    const auto node = root.find(key);
    if (!node) return std::nullopt;
    if (node->json().is_object()) return (*node)["content"].as_string();
    return node->as_string();
  };
  c.bos_token = token("bos_token");
  c.eos_token = token("eos_token");
  c.pad_token = token("pad_token");
  c.unk_token = token("unk_token");
  if (const auto v = root.find("add_bos_token")) c.add_bos_token = v->as_bool();
  if (const auto v = root.find("add_eos_token")) c.add_eos_token = v->as_bool();
  return c;
}

TokenizerConfig TokenizerConfig::load(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return {};
  return parse(read_text_file(path), path.string());
}

}  // namespace fp8llm
