// Hugging Face generation_config.json: the tokens that end generation, and the sampling defaults
// the model's authors chose.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fp8llm {

struct GenerationConfig {
  // Unset when the file does not set eos_token_id (absent or null).
  std::optional<std::vector<int32_t>> eos_token_ids;
  std::optional<int32_t> bos_token_id;
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k;
  std::optional<bool> do_sample;
};

// Reads <model_dir>/generation_config.json; a missing file gives an empty config. A file that is
// present but malformed is an Error naming the file and field.
GenerationConfig load_generation_config(const std::filesystem::path& model_dir);
// The text of a generation_config.json; `file` names it in errors.
GenerationConfig parse_generation_config(std::string_view text, const std::string& file);

// The token ids that end generation, as transformers takes them: generation_config.json's
// eos_token_id when the file sets one, else config.json's (from which transformers derives the
// generation config when the file is absent). Needs no tokenizer.
std::vector<int32_t> model_eos_token_ids(const std::filesystem::path& model_dir);

}  // namespace fp8llm
