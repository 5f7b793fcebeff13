// Text in, text out around an Engine for the one-prompt subcommands (run, chat): the model's
// text layer (text/text_model.h) and a reply streamed to a FILE as it is produced
// (text/text_stream.h), ending at the model's EOS tokens, --stop-ids and stop strings.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "fp8llm/engine.h"
#include "text/text_model.h"

namespace fp8llm::cli {

class TextSession {
 public:
  explicit TextSession(const std::filesystem::path& model_dir)
      : text_(TextModel::load(model_dir)) {}

  const TextModel& text() const { return text_; }
  const Tokenizer& tokenizer() const { return text_.tokenizer(); }
  std::vector<int32_t> encode_text(const std::string& text) const { return text_.encode(text); }
  std::string render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt = true,
                          const nlohmann::ordered_json& variables = nullptr) const {
    return text_.render_chat(messages, add_generation_prompt, variables);
  }
  std::vector<int32_t> encode_chat(const nlohmann::ordered_json& messages) const {
    return text_.encode_chat(messages);
  }
  const std::vector<int32_t>& stop_token_ids() const { return text_.eos_token_ids(); }

  struct Reply {
    std::string text;  // what was printed (without the stop token or stop string)
    GenerationResult result;
  };
  // Generates from `prompt`, writing text to `out` as it is produced. Generation also stops when
  // the text contains one of `stop_strings` (which is not printed).
  Reply generate(Engine& engine, const std::vector<int32_t>& prompt, GenerationOptions options,
                 const std::vector<std::string>& stop_strings, std::FILE* out) const;

 private:
  TextModel text_;
};

}  // namespace fp8llm::cli
