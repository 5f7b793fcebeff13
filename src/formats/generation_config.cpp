#include "formats/generation_config.h"

#include <nlohmann/json.hpp>

#include <limits>
#include <type_traits>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"
#include "formats/hf_config.h"

namespace fp8llm {
namespace {

// `key` when set: a boolean for bool, else a number within T's range (converted as a C++ cast
// would, which is undefined for a number out of range: 5e9 as an int).
template <typename T>
std::optional<T> optional_field(const nlohmann::json& j, const char* key, const std::string& file) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  const nlohmann::json& v = j[key];
  if constexpr (std::is_same_v<T, bool>) {
    FP8LLM_CHECK(v.is_boolean(), "{}: field '{}' must be true or false, not {}", file, key,
                 v.dump());
    return v.get<bool>();
  } else {
    FP8LLM_CHECK(v.is_number(), "{}: field '{}' must be a number, not {}", file, key, v.dump());
    const double d = v.get<double>();
    FP8LLM_CHECK(d >= static_cast<double>(std::numeric_limits<T>::lowest()) &&
                     d <= static_cast<double>(std::numeric_limits<T>::max()),
                 "{}: field '{}' is out of range ({})", file, key, v.dump());
    return static_cast<T>(d);
  }
}

// A token id: an integer in [0, 2^31).
int32_t token_id(const nlohmann::json& v, const char* key, const std::string& file) {
  const bool ok = v.is_number_integer() &&
                  (v.is_number_unsigned() ? v.get<uint64_t>() <= INT32_MAX
                                          : v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX);
  FP8LLM_CHECK(ok, "{}: field '{}' must be a token id (an integer from 0 to 2^31 - 1), not {}",
               file, key, v.dump());
  return static_cast<int32_t>(v.get<int64_t>());
}

}  // namespace

GenerationConfig load_generation_config(const std::filesystem::path& model_dir) {
  GenerationConfig g;
  const auto path = model_dir / "generation_config.json";
  if (!std::filesystem::exists(path)) return g;
  return parse_generation_config(read_text_file(path), path.string());
}

GenerationConfig parse_generation_config(std::string_view text, const std::string& file) {
  GenerationConfig g;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON at byte {}", file, e.byte);
  } catch (const nlohmann::json::exception& e) {  // a number out of range
    fail("{}: invalid JSON: {}", file, e.what());
  }
  check_json_depth(j, file);
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
  if (j.contains("bos_token_id") && !j["bos_token_id"].is_null()) {
    g.bos_token_id = token_id(j["bos_token_id"], "bos_token_id", file);
  }
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
