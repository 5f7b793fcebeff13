// Decodes generated ids one at a time into text that is safe to print as it comes: a character
// whose bytes are spread over several tokens (emoji, CJK with byte-level BPE) is held back until
// it is complete. The pieces put together equal Tokenizer::decode of all the ids.
#pragma once

#include <cstdint>
#include <string>

#include "text/tokenizer.h"

namespace fp8llm {

class StreamDecoder {
 public:
  explicit StreamDecoder(Tokenizer tokenizer, bool skip_special_tokens = false)
      : tokenizer_(std::move(tokenizer)), skip_special_tokens_(skip_special_tokens) {}

  // Adds one id; returns the text it completes (valid UTF-8, possibly empty). Bytes that can no
  // longer become a valid character come out as U+FFFD, as in decode().
  std::string put(int32_t id);
  // Returns what is still held (an unfinished character becomes U+FFFD) and starts over.
  std::string flush();
  // Bytes held back, waiting for the rest of a character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  Tokenizer tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;
};

}  // namespace fp8llm
