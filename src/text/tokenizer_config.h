// What the engine needs from tokenizer_config.json (transformers' settings next to
// tokenizer.json): the names of the BOS, EOS, PAD and UNK tokens and the add_bos_token /
// add_eos_token switches. The chat template is read elsewhere.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace fp8llm {

struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
  std::optional<bool> add_bos_token, add_eos_token;

  // Parses the text of a tokenizer_config.json; `name` is how errors refer to it. Token entries
  // may be a string, null, or an object with a "content" string (the older AddedToken form).
  static TokenizerConfig parse(std::string_view json_text, const std::string& name);
  // Reads `path`; a missing file gives an empty config (the file is optional).
  static TokenizerConfig load(const std::filesystem::path& path);
};

}  // namespace fp8llm
