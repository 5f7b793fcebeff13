// One sample's text as its tokens come: decoded incrementally (never half a UTF-8 character), with
// stop strings matched on the decoded text. Text that could still turn out to begin a stop string
// is held back; a stop string found ends the text just before it (it is never emitted).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "text/stream_decoder.h"
#include "text/tokenizer.h"

namespace fp8llm {

class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop_strings,
             bool skip_special_tokens = true);
  // Adds a token; returns the text that can be emitted now (possibly empty). After a stop string
  // is found, returns the text before it that was held back, and stopped() is true.
  std::string put(int32_t id);
  // The end of the sample: returns what was held back (nothing after a stop).
  std::string finish();
  bool stopped() const { return stopped_; }
  // Everything emitted so far.
  const std::string& text() const { return text_; }

 private:
  std::string emit(size_t n);

  StreamDecoder decoder_;
  std::vector<std::string> stops_;
  size_t hold_ = 0;      // bytes held back because they may begin a stop string
  std::string pending_;  // decoded, not yet emitted
  std::string text_;
  bool stopped_ = false;
};

// The longest prefix of text[0, len) that does not end inside a UTF-8 character.
size_t utf8_safe_prefix(const std::string& text, size_t len);

}  // namespace fp8llm
