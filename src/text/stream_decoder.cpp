#include "text/stream_decoder.h"

#include "text/utf8.h"

namespace fp8llm {

std::string StreamDecoder::put(int32_t id) {
  if (skip_special_tokens_ && tokenizer_.is_special(id)) return {};
  pending_ += tokenizer_.token_bytes(id);
  utf8::LossyScan scan = utf8::lossy(pending_, /*hold_incomplete_tail=*/true);
  pending_.erase(0, scan.consumed);
  return std::move(scan.text);
}

std::string StreamDecoder::flush() {
  std::string text = utf8::lossy(pending_, /*hold_incomplete_tail=*/false).text;
  pending_.clear();
  return text;
}

}  // namespace fp8llm
