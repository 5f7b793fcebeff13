// The normalizer of tokenizer.json, applied to the text between added tokens before
// pre-tokenization. Supported: none (null), NFC, and a Sequence of these.
#pragma once

#include <string>
#include <string_view>

#include "core/json_view.h"

namespace fp8llm {

class Normalizer {
 public:
  // `node` is the "normalizer" member; null means no normalization.
  static Normalizer parse(const JsonView& node);

  // True when normalize() returns its input unchanged.
  bool is_identity() const { return !nfc_; }

  // The normalized form of `text` (valid UTF-8).
  std::string normalize(std::string_view text) const;

 private:
  static void parse_into(const JsonView& node, Normalizer& n);

  bool nfc_ = false;
};

}  // namespace fp8llm
