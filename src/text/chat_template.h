// A model's chat template: turns a conversation (a JSON list of {"role", "content", ...}
// messages) into the prompt text, exactly as Hugging Face transformers'
// apply_chat_template(..., tokenize=False) does. The template is jinja2 source shipped with the
// model and rendered by the engine in tokenizer/jinja/ with transformers' settings (trim_blocks,
// lstrip_blocks, raise_exception, strftime_now, tojson as json.dumps).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "text/jinja/template.h"

namespace fp8llm {

class ChatTemplate {
 public:
  // The template of the model in `model_dir`: chat_template.jinja if the directory has one
  // (transformers prefers it), else tokenizer_config.json's "chat_template" (a string, or a list
  // of {"name", "template"} of which "default" is used). Special tokens (bos_token, eos_token, ...)
  // come from tokenizer_config.json, as strings or as {"content": ...} objects. Errors name the
  // file.
  static ChatTemplate from_tokenizer_config(const std::filesystem::path& model_dir);

  // `special_tokens`: an object of variables such as {"bos_token": "<s>"}, may be null.
  // `name` prefixes error messages ("<name> line 3: ...").
  explicit ChatTemplate(std::string source, nlohmann::ordered_json special_tokens = nullptr,
                        std::string name = "chat template");

  // Renders `messages` (a JSON array). The template sees `messages`, `add_generation_prompt`,
  // `tools` and `documents` (None), the special tokens, raise_exception() and strftime_now(),
  // then the entries of `extra_context` (an object or null; e.g. {"date_string": "..."} or
  // {"enable_thinking": false}), which override the others. Errors raised by the template
  // (raise_exception) or while rendering throw fp8llm::Error naming the template line.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra_context = nullptr) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  jinja::Template template_;
  jinja::Dict special_tokens_;
};

}  // namespace fp8llm
