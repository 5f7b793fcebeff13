#include "formats/generation_config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "formats/hf_config.h"

namespace fp8llm {
namespace {

template <typename T>
std::optional<T> optional_field(const nlohmann::json& j, const char* key, const std::string& file) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  try {
    return j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("{}: field '{}' has the wrong type", file, key);
  }
}

// A token id: an integer in [0, 2^31).
int32_t token_id(const nlohmann::json& v, const char* key, const std::string& file) {
  const bool ok = v.is_number_integer() &&
                  (v.is_number_unsigned() ? v.get<uint64_t>() <= INT32_MAX
                                          : v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX);
  FP8LLM_CHECK(ok, "{}: field '{}' must hold token ids (integers from 0 to 2^31 - 1), not {}", file,
               key, v.dump());
  return static_cast<int32_t>(v.get<int64_t>());
}

}  // namespace

GenerationConfig load_generation_config(const std::filesystem::path& model_dir) {
  GenerationConfig g;
  const auto path = model_dir / "generation_config.json";
  if (!std::filesystem::exists(path)) return g;
  const std::string file = path.string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON at byte {}", file, e.byte);
  }
  FP8LLM_CHECK(j.is_object(), "{}: expected a JSON object", file);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const auto& e = j["eos_token_id"];
    std::vector<int32_t>& ids = g.eos_token_ids.emplace();
    if (e.is_number_integer()) {
      ids.push_back(token_id(e, "eos_token_id", file));
    } else if (e.is_array()) {
      for (const auto& v : e) ids.push_back(token_id(v, "eos_token_id", file));
    } else {
      fail("{}: field 'eos_token_id' must be an integer or a list of integers", file);
    }
  }
  g.bos_token_id = optional_field<int32_t>(j, "bos_token_id", file);
  g.temperature = optional_field<float>(j, "temperature", file);
  g.top_p = optional_field<float>(j, "top_p", file);
  g.min_p = optional_field<float>(j, "min_p", file);
  g.repetition_penalty = optional_field<float>(j, "repetition_penalty", file);
  g.top_k = optional_field<int>(j, "top_k", file);
  g.do_sample = optional_field<bool>(j, "do_sample", file);
  return g;
}

std::vector<int32_t> model_eos_token_ids(const std::filesystem::path& model_dir) {
  if (auto ids = load_generation_config(model_dir).eos_token_ids) return *ids;
  std::vector<int32_t> ids;
  for (int64_t id : load_model_config(model_dir).eos_token_ids) {
    ids.push_back(static_cast<int32_t>(id));  // config.json ids are checked below 2^31
  }
  return ids;
}

}  // namespace fp8llm
