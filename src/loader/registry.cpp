#include "loader/registry.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"
#include "core/log.h"
#include "loader/sha256.h"

namespace fp8llm {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_registry(const fs::path& registry) {
  if (!fs::exists(registry)) return json{{"version", 1}, {"models", json::array()}};
  json j;
  try {
    j = json::parse(read_text_file(registry));
  } catch (const json::exception& e) {
    fail("{}: not valid JSON ({})", registry.string(), e.what());
  }
  check_json_depth(j, registry.string());
  FP8LLM_CHECK(j.is_object() && j.contains("models") && j["models"].is_array(),
               "{}: expected an object with a \"models\" list", registry.string());
  for (const auto& m : j["models"]) {
    FP8LLM_CHECK(m.is_object() && m.value("source", json()).is_string() &&
                     m.value("copies", json()).is_object(),
                 "{}: each entry of \"models\" needs \"source\" and \"copies\"", registry.string());
  }
  return j;
}

std::string absolute_str(const fs::path& p) {
  return fs::weakly_canonical(fs::absolute(p)).string();
}

}  // namespace

fs::path default_registry_path() {
  if (const char* env = std::getenv("FP8LLM_REGISTRY"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
    return fs::path(xdg) / "fp8llm" / "registry.json";
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".config" / "fp8llm" / "registry.json";
}

std::string config_sha256(const fs::path& model_dir) {
  return sha256_hex(read_text_file(model_dir / "config.json"));
}

std::optional<fs::path> find_registered_copy(const fs::path& registry, const fs::path& source_dir,
                                             const std::string& mode) {
  const json j = read_registry(registry);
  const std::string source = absolute_str(source_dir);
  for (const auto& m : j["models"]) {
    if (m["source"] != source || !m["copies"].contains(mode)) continue;
    if (m.value("config_sha256", "") != config_sha256(source_dir)) {
      log_warning("registry {}: the {} copy of {} was made from a different config.json; not used",
                  registry.string(), mode, source);
      continue;
    }
    const fs::path copy = m["copies"][mode].get<std::string>();
    if (fs::is_directory(copy)) return copy;
    log_warning("registry {}: the {} copy of {} ({}) no longer exists", registry.string(), mode,
                source, copy.string());
  }
  return std::nullopt;
}

void register_copy(const fs::path& registry, const fs::path& source_dir, const std::string& mode,
                   const fs::path& copy_dir) {
  json j = read_registry(registry);
  const std::string source = absolute_str(source_dir);
  const std::string sha = config_sha256(source_dir);
  json* entry = nullptr;
  for (auto& m : j["models"])
    if (m["source"] == source) entry = &m;
  if (!entry) {
    j["models"].push_back({{"source", source}, {"copies", json::object()}});
    entry = &j["models"].back();
  }
  if (entry->value("config_sha256", "") != sha) (*entry)["copies"] = json::object();
  (*entry)["config"] = "config.json";
  (*entry)["config_sha256"] = sha;
  (*entry)["copies"][mode] = absolute_str(copy_dir);
  if (registry.has_parent_path()) fs::create_directories(registry.parent_path());
  write_text_file_atomically(registry, j.dump(2) + "\n");
}

}  // namespace fp8llm
