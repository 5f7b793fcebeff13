// The decoder of tokenizer.json: how token strings become output bytes. Supported: ByteLevel,
// which reads each token as bytes written in the byte-level alphabet; a token with characters
// outside that alphabet (an added token such as "<|im_end|>" is inside it, one containing a
// space is not) stands for its own UTF-8 bytes, as in tokenizers.
#pragma once

#include <string>
#include <string_view>

#include "core/json_view.h"

namespace fp8llm {

class Decoder {
 public:
  // `node` is the "decoder" member.
  static Decoder parse(const JsonView& node);

  // The bytes `token` contributes to decoded text (not necessarily whole UTF-8 characters).
  std::string token_bytes(std::string_view token) const;
};

}  // namespace fp8llm
