#include "text/text_stream.h"

#include <algorithm>

#include "text/utf8.h"

namespace fp8llm {

size_t utf8_safe_prefix(const std::string& text, size_t len) {
  return utf8::complete_prefix(std::string_view(text).substr(0, len));
}

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop_strings,
                       TextStreamOptions options)
    : decoder_(tokenizer, options.skip_special_tokens),
      stops_(std::move(stop_strings)),
      include_stop_(options.include_stop) {
  std::erase(stops_, std::string());
  for (const auto& s : stops_) longest_stop_ = std::max(longest_stop_, s.size());
  if (!include_stop_ && longest_stop_ > 0) hold_ = longest_stop_ - 1;
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
  // Held back, a stop string lies wholly in pending_; emitted eagerly (include_stop), it may
  // begin in the text already out: search from as far back as the longest one reaches.
  const size_t back =
      include_stop_ && longest_stop_ > 0 ? std::min(text_.size(), longest_stop_ - 1) : 0;
  const std::string window = text_.substr(text_.size() - back) + pending_;
  size_t cut = std::string::npos, cut_len = 0;
  for (const auto& s : stops_) {
    const size_t at = window.find(s);
    if (at < cut) {
      cut = at;
      cut_len = s.size();
    }
  }
  if (cut != std::string::npos) {
    // The text ends before the stop string, or just after it (not found earlier, it ends in
    // pending_).
    pending_.resize((include_stop_ ? cut + cut_len : cut) - back);
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
