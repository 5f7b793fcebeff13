#include "text/text_stream.h"

#include <algorithm>

namespace fp8llm {

size_t utf8_safe_prefix(const std::string& text, size_t len) {
  size_t p = len;  // after the loop, text[p - 1] is the lead byte of the last character
  while (p > 0 && len - p < 3 && (static_cast<unsigned char>(text[p - 1]) & 0xC0) == 0x80) --p;
  if (p == 0) return 0;
  const auto lead = static_cast<unsigned char>(text[p - 1]);
  const size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  return len - (p - 1) >= need ? len : p - 1;
}

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop_strings,
                       bool skip_special_tokens)
    : decoder_(tokenizer, skip_special_tokens), stops_(std::move(stop_strings)) {
  std::erase(stops_, std::string());
  for (const auto& s : stops_) hold_ = std::max(hold_, s.size() - 1);
}

std::string TextStream::emit(size_t n) {
  std::string out = pending_.substr(0, n);
  text_ += out;
  pending_.erase(0, n);
  return out;
}

std::string TextStream::put(int32_t id) {
  if (stopped_) return {};
  pending_ += decoder_.put(id);
  size_t cut = std::string::npos;
  for (const auto& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    pending_.resize(cut);
    stopped_ = true;
    return emit(pending_.size());
  }
  if (pending_.size() <= hold_) return {};
  return emit(utf8_safe_prefix(pending_, pending_.size() - hold_));
}

std::string TextStream::finish() {
  if (stopped_) return {};
  pending_ += decoder_.flush();
  return emit(pending_.size());
}

}  // namespace fp8llm
