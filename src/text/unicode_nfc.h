// Unicode Normalization Form C (canonical decomposition, then canonical composition), UAX #15.
#pragma once

#include <string>
#include <string_view>

namespace fp8llm {

// The NFC form of `text` (valid UTF-8).
std::string to_nfc(std::string_view text);

// True when the quick check proves `text` (valid UTF-8) is already in NFC; false means it may not
// be. Lets callers skip the full algorithm on the common case.
bool is_nfc_quick(std::string_view text);

}  // namespace fp8llm
