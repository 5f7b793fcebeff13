// UTF-8 scanning shared by the tokenizer: validation, code point iteration, and the lossy
// conversion that decoding applies to token bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fp8llm::utf8 {

// Byte offset of the first byte that does not start or continue a well-formed UTF-8 sequence
// (overlong forms, surrogates and values above U+10FFFF are ill-formed), or nullopt if `s` is
// valid throughout.
std::optional<size_t> find_invalid(std::string_view s);

// Decodes the code point at s[pos] (which must be valid UTF-8) and advances pos past it.
char32_t next(std::string_view s, size_t& pos);

// Appends the UTF-8 encoding of `cp` (a Unicode scalar value).
void append(std::string& out, char32_t cp);

// Length of the longest prefix of `s` that does not end inside a sequence more bytes could still
// complete: text can be printed up to there while the rest of a character is awaited.
size_t complete_prefix(std::string_view s);

// Number of bytes in the sequence starting with `lead`: 1 for ASCII and stray bytes.
inline size_t sequence_length(uint8_t lead) {
  return lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Result of scanning a byte string for output as text.
struct LossyScan {
  std::string text;  // valid UTF-8: every ill-formed sequence replaced by U+FFFD
  size_t consumed;   // bytes of the input covered by `text`
};

// Converts bytes to valid UTF-8 the way Rust's String::from_utf8_lossy does (the Unicode
// "maximal subpart" practice: each maximal prefix of a well-formed sequence that cannot be
// completed becomes one U+FFFD). With `hold_incomplete_tail`, a trailing sequence that could
// still be completed by more bytes is left unconsumed instead of being replaced, so that
// converting a stream piece by piece gives the same text as converting it whole.
LossyScan lossy(std::string_view bytes, bool hold_incomplete_tail);

}  // namespace fp8llm::utf8
