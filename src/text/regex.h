// A pre-tokenizer regex compiled with PCRE2 (UTF + UCP, JIT when available), matched with the
// semantics of the Oniguruma engine that Hugging Face tokenizers uses.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fp8llm {

class Regex {
 public:
  // `where` names the field the pattern came from, for errors ("tokenizer.json:
  // pre_tokenizer.pretokenizers[0].pattern.Regex"). With `literal`, the pattern matches itself.
  Regex(std::string_view pattern, bool literal, std::string where);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Replaces `out` with the [begin, end) byte ranges of the successive matches in `text`, which
  // must be valid UTF-8. Like Oniguruma's find-iterator, an empty match right where the previous
  // match ended is skipped.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  // The pattern handed to PCRE2 (see rewrite_for_pcre2).
  const std::string& compiled_pattern() const { return pattern_; }

 private:
  struct Code;
  std::unique_ptr<Code> code_;
  std::string pattern_;
  std::string where_;
};

// Rewrites `\s` and `\S` into explicit classes of the Unicode White_Space characters, which is
// what they mean in Oniguruma. PCRE2's UCP `\s` also matches U+180E (no longer whitespace since
// Unicode 6.3). `\S` inside a character class is left as it is.
std::string rewrite_for_pcre2(std::string_view pattern);

}  // namespace fp8llm
