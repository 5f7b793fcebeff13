// Text in, text out around an Engine: the model's tokenizer and chat template, the tokens that end
// a reply (generation_config.json, tokenizer_config.json, --stop-ids), stop strings, and streaming
// of the reply as it is produced (never half a UTF-8 character).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fp8llm/engine.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace fp8llm::cli {

class TextSession {
 public:
  // Reads the tokenizer and chat template of `model_dir` (the template is optional until used).
  explicit TextSession(const std::filesystem::path& model_dir);

  const Tokenizer& tokenizer() const { return tokenizer_; }
  // Plain text -> ids, with the tokenizer's special tokens (e.g. BOS).
  std::vector<int32_t> encode_text(const std::string& text) const;
  // Messages -> chat template (with the assistant prompt) -> ids. Errors when the model ships no
  // chat template.
  // `variables`: extra template variables (e.g. date_string), an object or null.
  std::string render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt = true,
                          const nlohmann::ordered_json& variables = nullptr) const;
  std::vector<int32_t> encode_chat(const nlohmann::ordered_json& messages) const;
  // Token ids that end a reply: model_eos_token_ids (formats/generation_config.h) and the EOS of
  // tokenizer_config.json.
  const std::vector<int32_t>& stop_token_ids() const { return stop_ids_; }

  struct Reply {
    std::string text;  // what was printed (without the stop token or stop string)
    GenerationResult result;
  };
  // Generates from `prompt`, writing text to `out` as it is produced. Generation also stops when
  // the text contains one of `stop_strings` (which is not printed).
  Reply generate(Engine& engine, const std::vector<int32_t>& prompt, GenerationOptions options,
                 const std::vector<std::string>& stop_strings, std::FILE* out) const;

 private:
  std::filesystem::path model_dir_;
  Tokenizer tokenizer_;
  std::optional<ChatTemplate> chat_template_;
  std::string chat_template_error_;
  std::vector<int32_t> stop_ids_;
};

}  // namespace fp8llm::cli
