// One sample's text as its tokens come: decoded incrementally (never half a UTF-8 character), with
// stop strings matched on the decoded text. Text that could still turn out to begin a stop string
// is held back; a stop string found ends the text just before it (or, with include_stop, just
// after it: nothing needs holding back then).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "text/stream_decoder.h"
#include "text/tokenizer.h"

namespace fp8llm {

struct TextStreamOptions {
  bool skip_special_tokens = true;  // special tokens (<|eot_id|>, ...) add no text
  bool include_stop = false;        // vLLM's include_stop_str_in_output
};

class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop_strings,
             TextStreamOptions options = {});
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
  bool include_stop_;
  size_t longest_stop_ = 0;
  size_t hold_ = 0;      // bytes held back because they may begin a stop string
  std::string pending_;  // decoded, not yet emitted
  std::string text_;
  bool stopped_ = false;
};

// The longest prefix of text[0, len) that does not end inside a UTF-8 character.
size_t utf8_safe_prefix(const std::string& text, size_t len);

}  // namespace fp8llm
