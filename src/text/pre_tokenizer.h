// The pre-tokenizer of tokenizer.json: cuts normalized text into the pieces that BPE encodes one at
// a time. Supported: Split (regex or string pattern, every delimiter behavior, invert), ByteLevel
// (add_prefix_space, use_regex; trim_offsets only concerns offsets, which are not produced) and
// Sequence of these.
#pragma once

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "core/json_view.h"
#include "text/regex.h"

namespace fp8llm {

// What a Split keeps of the text around and inside each match (tokenizers'
// SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  // `node` is the "pre_tokenizer" member (null means the text is one piece).
  static PreTokenizer parse(const JsonView& node);

  // True when the last step is ByteLevel. Its mapping of bytes to the byte-level alphabet is then
  // left to the model, which matches raw bytes against a vocabulary translated back to bytes once
  // at load (see BpeModel), so pieces reach `sink` as raw bytes.
  bool ends_with_byte_level() const;

  // Cuts `text` (valid UTF-8) and calls `sink` with each non-empty piece, in order.
  void run(std::string_view text, const std::function<void(std::string_view)>& sink) const;

 private:
  struct Split {
    Regex regex;
    SplitBehavior behavior;
    bool invert;
  };
  struct ByteLevel {
    bool add_prefix_space;
    std::optional<Regex> regex;  // GPT-2's, when use_regex
  };
  struct Step {
    std::optional<Split> split;
    std::optional<ByteLevel> byte_level;
  };
  struct Scratch;

  static void parse_into(const JsonView& node, std::vector<Step>& steps);
  void run_step(size_t index, std::string_view piece, Scratch& scratch,
                const std::function<void(std::string_view)>& sink) const;

  std::vector<Step> steps_;
};

// Turns the matches of a pattern in a text of `length` bytes into the pieces a Split keeps,
// following tokenizers' NormalizedString::split. Empty pieces are dropped.
void split_by_behavior(const std::vector<std::pair<size_t, size_t>>& matches, size_t length,
                       SplitBehavior behavior, bool invert,
                       std::vector<std::pair<size_t, size_t>>& pieces);

}  // namespace fp8llm
