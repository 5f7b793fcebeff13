// The "added_tokens" of tokenizer.json: strings (special tokens such as <|eot_id|>, and any others
// added after training) that are cut out of the text before the normalizer and pre-tokenizer run
// and become one id each.
//
// Matching follows tokenizers' AddedVocabulary: leftmost-longest over the raw text for tokens with
// normalized=false, then over each normalized stretch between them for tokens with
// normalized=true (whose contents are normalized the same way). single_word, lstrip and rstrip are
// honoured; "words" and "whitespace" are Unicode \w and White_Space, as in tokenizers.
// One deliberate difference: after an rstrip token has swallowed trailing whitespace, the search
// resumes after that whitespace instead of possibly matching a token inside it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json_view.h"
#include "text/normalizer.h"
#include "text/regex.h"

namespace fp8llm {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A stretch of text that an added token takes up (including stripped whitespace).
struct AddedTokenMatch {
  size_t begin, end;
  int32_t id;
};

class AddedTokens {
 public:
  AddedTokens();
  ~AddedTokens();
  AddedTokens(AddedTokens&&) noexcept;
  AddedTokens& operator=(AddedTokens&&) noexcept;

  // `list` is the "added_tokens" array (or null). A content that the model vocabulary already
  // has keeps the model's id (`model_id`), as in tokenizers; otherwise the id in the file is used.
  static AddedTokens parse(const JsonView& list, const Normalizer& normalizer,
                           const std::function<std::optional<int32_t>(std::string_view)>& model_id);

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find(int32_t id) const;
  const AddedToken* find(std::string_view content) const;

  // The added tokens in `text` (valid UTF-8), in order and not overlapping: with
  // `normalized_tokens` false the tokens matched on raw text, with true those matched on
  // normalized text.
  void match(std::string_view text, bool normalized_tokens,
             std::vector<AddedTokenMatch>& out) const;

 private:
  // Leftmost-longest search for a set of strings, bucketed by first byte.
  struct Matcher {
    std::array<std::vector<std::pair<std::string, size_t>>, 256> by_first_byte;  // longest first
    bool empty = true;
    void add(std::string pattern, size_t token_index);
    void finish();
  };

  bool is_word_char_before(std::string_view text, size_t pos) const;
  bool is_word_char_at(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Matcher raw_, normalized_;
  std::optional<Regex> word_char_;  // compiled only when some token is single_word
};

// Unicode White_Space (what \s means to tokenizers' lstrip/rstrip).
bool is_unicode_whitespace(char32_t cp);

}  // namespace fp8llm
