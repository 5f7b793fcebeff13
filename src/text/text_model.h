// Everything between token ids and text for one model directory: its tokenizer, its chat
// template, and the tokens that end a reply (generation_config.json's eos_token_id and
// tokenizer_config.json's eos_token). The CLI, the server and the Python module share it.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace fp8llm {

class TextModel {
 public:
  // Reads the tokenizer and chat template of `model_dir` (the template is optional until used).
  static TextModel load(const std::filesystem::path& model_dir);

  const Tokenizer& tokenizer() const { return tokenizer_; }
  // Plain text -> ids, with the tokenizer's special tokens (e.g. BOS).
  std::vector<int32_t> encode(const std::string& text) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = true) const;
  bool has_chat_template() const { return chat_template_.has_value(); }
  // Messages -> text through the chat template; an Error when the model ships none.
  // `variables`: extra template variables (e.g. date_string), an object or null.
  std::string render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt = true,
                          const nlohmann::ordered_json& variables = nullptr) const;
  // The rendered chat's ids (the template writes the special tokens itself, as transformers'
  // apply_chat_template(tokenize=True) assumes).
  std::vector<int32_t> encode_chat(const nlohmann::ordered_json& messages,
                                   const nlohmann::ordered_json& variables = nullptr) const;
  // Token ids that end a reply.
  const std::vector<int32_t>& eos_token_ids() const { return eos_; }

 private:
  TextModel(Tokenizer tokenizer) : tokenizer_(std::move(tokenizer)) {}
  Tokenizer tokenizer_;
  std::optional<ChatTemplate> chat_template_;
  std::string chat_template_error_;
  std::vector<int32_t> eos_;
};

}  // namespace fp8llm
