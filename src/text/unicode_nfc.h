// Unicode Normalization Form C (canonical decomposition, then canonical composition), UAX #15,
// by utf8proc.
//
// Hugging Face tokenizers normalizes with the Rust crate unicode-normalization-alignments 0.1.12,
// whose tables are Unicode 9.0.0; utf8proc carries those of its own release (Unicode 15.0 in
// utf8proc 2.8, Debian 12; 15.1 in 2.9, Ubuntu 24.04). Unicode's stability policy fixes the
// normalization of every character once it is assigned, so the two agree on all text except
// characters assigned after 9.0 that decompose or combine, which the older tables leave alone.
#pragma once

#include <string>
#include <string_view>

namespace fp8llm {

// The NFC form of `text` (valid UTF-8).
std::string to_nfc(std::string_view text);

// True when a scan without lookups proves `text` (valid UTF-8) is already in NFC: every code point
// is below U+0300, where no character decomposes or combines. False means it may not be. Lets
// callers skip the full algorithm on the common case.
bool is_nfc_quick(std::string_view text);

}  // namespace fp8llm
