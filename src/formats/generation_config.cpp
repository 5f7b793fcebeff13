#include "formats/generation_config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"

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
    if (e.is_number_integer()) {
      g.eos_token_ids.push_back(e.get<int32_t>());
    } else if (e.is_array()) {
      for (const auto& v : e) {
        FP8LLM_CHECK(v.is_number_integer(), "{}: field 'eos_token_id' must hold integers", file);
        g.eos_token_ids.push_back(v.get<int32_t>());
      }
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

}  // namespace fp8llm
