// Feeds arbitrary bytes to the tokenizer.json reader, then runs what the engine runs on a
// tokenizer it accepted: encoding a fixed text (with and without special tokens), decoding the
// ids and a few made-up ones. tokenizer_config.json's reader gets the same bytes. Only
// fp8llm::Error may be thrown; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/tokenizer.h"
#include "text/tokenizer_config.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Words, digits, spaces, punctuation, multi-byte characters and a decomposed accent (NFC).
constexpr std::string_view kSample =
    "Hello, world!  It's 2024: 3.14 < 42 ... café cafe\xcc\x81 \xe6\x97\xa5\xe6\x9c\xac "
    "\xf0\x9f\x98\x80\n\ttabs";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp8llm;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    TokenizerConfig::parse(text, "tokenizer_config.json");
  } catch (const Error&) {
  }
  try {
    const Tokenizer t = Tokenizer::from_json(text, "tokenizer.json");
    for (const bool special : {true, false}) {
      const std::vector<int32_t> ids = t.encode(kSample, special);
      for (int32_t id : ids) check(id >= 0 && id < t.vocab_size());
      t.decode(ids, false);
      t.decode(ids, true);
    }
    const std::vector<int32_t> made_up = {0, 1, t.vocab_size() - 1, t.vocab_size(), -1};
    t.decode(made_up);
  } catch (const Error&) {
  }
  return 0;
}
