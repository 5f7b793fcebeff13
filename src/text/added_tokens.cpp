#include "text/added_tokens.h"

#include <algorithm>

#include "text/utf8.h"

namespace fp8llm {

bool is_unicode_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

AddedTokens::AddedTokens() = default;
AddedTokens::~AddedTokens() = default;
AddedTokens::AddedTokens(AddedTokens&&) noexcept = default;
AddedTokens& AddedTokens::operator=(AddedTokens&&) noexcept = default;

void AddedTokens::Matcher::add(std::string pattern, size_t token_index) {
  const auto first = static_cast<uint8_t>(pattern.front());
  by_first_byte[first].emplace_back(std::move(pattern), token_index);
  empty = false;
}

void AddedTokens::Matcher::finish() {
  for (auto& bucket : by_first_byte) {
    std::stable_sort(bucket.begin(), bucket.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
}

AddedTokens AddedTokens::parse(
    const JsonView& list, const Normalizer& normalizer,
    const std::function<std::optional<int32_t>(std::string_view)>& model_id) {
  AddedTokens a;
  if (list.is_null()) return a;
  const size_t n = list.as_array().size();
  bool any_single_word = false;
  for (size_t i = 0; i < n; ++i) {
    const JsonView node = list[i];
    AddedToken t;
    t.content = node["content"].as_string();
    const int64_t file_id = node["id"].as_int();
    if (file_id < 0 || file_id > INT32_MAX) node["id"].fail("must be a non-negative 32-bit id");
    t.id = model_id(t.content).value_or(static_cast<int32_t>(file_id));
    t.single_word = node.bool_or("single_word", false);
    t.lstrip = node.bool_or("lstrip", false);
    t.rstrip = node.bool_or("rstrip", false);
    t.normalized = node.bool_or("normalized", true);
    t.special = node.bool_or("special", false);
    if (const auto bad = utf8::find_invalid(t.content))
      node["content"].fail("is not valid UTF-8 (byte {})", *bad);
    any_single_word |= t.single_word;
    // A later entry for the same content replaces the earlier one.
    if (const auto it = a.by_content_.find(t.content); it != a.by_content_.end()) {
      a.tokens_[it->second] = t;
      continue;
    }
    a.by_content_.emplace(t.content, a.tokens_.size());
    a.tokens_.push_back(std::move(t));
  }
  for (size_t i = 0; i < a.tokens_.size(); ++i) {
    const AddedToken& t = a.tokens_[i];
    a.by_id_[t.id] = i;
    // Empty contents never match (tokenizers ignores them too).
    if (t.content.empty()) continue;
    if (t.normalized) {
      std::string form = normalizer.normalize(t.content);
      if (!form.empty()) a.normalized_.add(std::move(form), i);
    } else {
      a.raw_.add(t.content, i);
    }
  }
  a.raw_.finish();
  a.normalized_.finish();
  if (any_single_word) {
    // Rust regex's Unicode \w.
    a.word_char_.emplace(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])", false,
                         "added token word boundary");
  }
  return a;
}

const AddedToken* AddedTokens::find(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedTokens::find(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

bool AddedTokens::is_word_char_at(std::string_view text, size_t pos) const {
  size_t end = pos;
  utf8::next(text, end);
  std::vector<std::pair<size_t, size_t>> m;
  word_char_->find_all(text.substr(pos, end - pos), m);
  return !m.empty();
}

bool AddedTokens::is_word_char_before(std::string_view text, size_t pos) const {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return is_word_char_at(text, start);
}

void AddedTokens::match(std::string_view text, bool normalized_tokens,
                        std::vector<AddedTokenMatch>& out) const {
  out.clear();
  const Matcher& m = normalized_tokens ? normalized_ : raw_;
  if (m.empty) return;
  size_t kept_until = 0;  // end of the previous kept match
  size_t pos = 0;
  while (pos < text.size()) {
    const auto& bucket = m.by_first_byte[static_cast<uint8_t>(text[pos])];
    const std::pair<std::string, size_t>* hit = nullptr;
    for (const auto& candidate : bucket) {
      if (text.substr(pos).starts_with(candidate.first)) {
        hit = &candidate;
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    const AddedToken& t = tokens_[hit->second];
    size_t begin = pos, end = pos + hit->first.size();
    pos = end;
    if (t.single_word) {
      const bool word_before = begin > 0 && is_word_char_before(text, begin);
      const bool word_after = end < text.size() && is_word_char_at(text, end);
      if (word_before || word_after) continue;
    }
    if (t.lstrip) {
      // Take the whitespace before the token, but not what an earlier match took.
      size_t s = begin;
      while (s > kept_until) {
        size_t prev = s - 1;
        while (prev > 0 && (static_cast<uint8_t>(text[prev]) & 0xC0) == 0x80) --prev;
        size_t p = prev;
        if (!is_unicode_whitespace(utf8::next(text, p))) break;
        s = prev;
      }
      begin = s;
    }
    if (t.rstrip) {
      while (end < text.size()) {
        size_t p = end;
        if (!is_unicode_whitespace(utf8::next(text, p))) break;
        end = p;
      }
      pos = end;
    }
    out.push_back({begin, end, t.id});
    kept_until = end;
  }
}

}  // namespace fp8llm
