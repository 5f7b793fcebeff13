#include "text/text_stream.h"

#include <algorithm>

#include "text/utf8.h"

namespace fp8llm {

size_t utf8_safe_prefix(const std::string& text, size_t len) {
  return utf8::complete_prefix(std::string_view(text).substr(0, len));
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
