#include "text/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "text/unicode_nfc_data.h"
#include "text/utf8.h"

namespace fp8llm {
namespace {

// Hangul syllables decompose and compose arithmetically (Unicode section 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// Everything below U+0300 is a starter that NFC leaves alone (checked by the generator).
constexpr char32_t kFirstUnstable = 0x300;

uint8_t combining_class(char32_t cp) {
  if (cp < kFirstUnstable) return 0;
  const std::span table(nfc_data::kCombiningClasses, nfc_data::kCombiningClassCount);
  const auto it = std::upper_bound(table.begin(), table.end(), cp,
                                   [](char32_t c, const auto& r) { return c < r.first; });
  if (it == table.begin()) return 0;
  const auto& r = *(it - 1);
  return cp <= r.last ? r.ccc : 0;
}

bool quick_check_not_yes(char32_t cp) {
  if (cp < kFirstUnstable) return false;
  const std::span table(nfc_data::kQuickCheckNotYes, nfc_data::kQuickCheckNotYesCount);
  const auto it = std::upper_bound(table.begin(), table.end(), cp,
                                   [](char32_t c, const auto& r) { return c < r.first; });
  return it != table.begin() && cp <= (it - 1)->last;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= kFirstUnstable) {
    const std::span table(nfc_data::kDecompositions, nfc_data::kDecompositionCount);
    const auto it = std::lower_bound(table.begin(), table.end(), cp,
                                     [](const auto& d, char32_t c) { return d.cp < c; });
    if (it != table.end() && it->cp == cp) {
      out.insert(out.end(), it->chars, it->chars + it->length);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of (first, second), or 0.
char32_t compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const std::span table(nfc_data::kCompositions, nfc_data::kCompositionCount);
  const auto it = std::lower_bound(table.begin(), table.end(), std::pair(first, second),
                                   [](const auto& c, const std::pair<char32_t, char32_t>& key) {
                                     return std::pair(c.first, c.second) < key;
                                   });
  if (it != table.end() && it->first == first && it->second == second) return it->composite;
  return 0;
}

}  // namespace

bool is_nfc_quick(std::string_view text) {
  uint8_t last_ccc = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<uint8_t>(text[pos]) < 0xCC) {  // lead bytes below 0xCC encode < U+0300
      pos += utf8::sequence_length(static_cast<uint8_t>(text[pos]));
      last_ccc = 0;
      continue;
    }
    const char32_t cp = utf8::next(text, pos);
    const uint8_t ccc = combining_class(cp);
    if ((ccc != 0 && last_ccc > ccc) || quick_check_not_yes(cp)) return false;
    last_ccc = ccc;
  }
  return true;
}

std::string to_nfc(std::string_view text) {
  // Full canonical decomposition.
  std::vector<char32_t> d;
  d.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) decompose(utf8::next(text, pos), d);
  // Canonical ordering: each run of non-starters sorted by combining class, stably.
  std::vector<uint8_t> ccc(d.size());
  for (size_t i = 0; i < d.size(); ++i) ccc[i] = combining_class(d[i]);
  for (size_t i = 0; i < d.size();) {
    if (ccc[i] == 0) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < d.size() && ccc[end] != 0) ++end;
    for (size_t a = i + 1; a < end; ++a) {  // insertion sort: runs are short
      for (size_t b = a; b > i && ccc[b - 1] > ccc[b]; --b) {
        std::swap(ccc[b - 1], ccc[b]);
        std::swap(d[b - 1], d[b]);
      }
    }
    i = end;
  }
  // Canonical composition: a character joins the last starter unless something between them
  // blocks it (a character of the same or higher class, or a starter).
  std::vector<char32_t> out;
  out.reserve(d.size());
  size_t starter = SIZE_MAX;  // index in `out` of the last starter; none before the first
  int last_class = 0;         // class of the last character kept
  for (size_t i = 0; i < d.size(); ++i) {
    const char32_t cp = d[i];
    const int cls = ccc[i];
    if (starter != SIZE_MAX && (last_class < cls || last_class == 0)) {
      if (const char32_t composite = compose(out[starter], cp)) {
        out[starter] = composite;
        continue;
      }
    }
    if (cls == 0) starter = out.size();
    last_class = cls;
    out.push_back(cp);
  }
  std::string result;
  result.reserve(text.size());
  for (const char32_t cp : out) utf8::append(result, cp);
  return result;
}

}  // namespace fp8llm
