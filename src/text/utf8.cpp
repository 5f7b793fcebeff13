#include "text/utf8.h"

#include <algorithm>

namespace fp8llm::utf8 {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Length of the well-formed prefix of the sequence at s[pos] (Unicode Table 3-7), and whether it
// is a complete sequence. A prefix of length 0 means s[pos] can never start a sequence.
struct Prefix {
  size_t length;
  bool complete;
};

Prefix well_formed_prefix(std::string_view s, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[pos + i]); };
  const uint8_t b0 = byte(0);
  if (b0 < 0x80) return {1, true};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {0, false};
  }
  size_t have = 1;
  while (have < need && pos + have < s.size()) {
    const uint8_t b = byte(have);
    const bool ok = have == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {have, false};
    ++have;
  }
  return {have, have == need};
}

}  // namespace

std::optional<size_t> find_invalid(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    // ASCII runs are the common case.
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Prefix p = well_formed_prefix(s, pos);
    if (!p.complete) return pos;
    pos += p.length;
  }
  return std::nullopt;
}

char32_t next(std::string_view s, size_t& pos) {
  const auto b = [&](size_t i) { return static_cast<char32_t>(static_cast<uint8_t>(s[pos + i])); };
  const char32_t b0 = b(0);
  char32_t cp;
  if (b0 < 0x80) {
    cp = b0;
    pos += 1;
  } else if (b0 < 0xE0) {
    cp = ((b0 & 0x1F) << 6) | (b(1) & 0x3F);
    pos += 2;
  } else if (b0 < 0xF0) {
    cp = ((b0 & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    pos += 3;
  } else {
    cp = ((b0 & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    pos += 4;
  }
  return cp;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t complete_prefix(std::string_view s) {
  // A sequence is at most 4 bytes: its lead byte is among the last four.
  for (size_t back = 1; back <= std::min<size_t>(4, s.size()); ++back) {
    const size_t pos = s.size() - back;
    if ((static_cast<uint8_t>(s[pos]) & 0xC0) == 0x80) continue;  // a continuation byte
    const Prefix p = well_formed_prefix(s, pos);
    return !p.complete && p.length == back ? pos : s.size();
  }
  return s.size();
}

LossyScan lossy(std::string_view bytes, bool hold_incomplete_tail) {
  LossyScan r{{}, 0};
  r.text.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Prefix p = well_formed_prefix(bytes, pos);
    if (p.complete) {
      r.text.append(bytes.substr(pos, p.length));
      pos += p.length;
      continue;
    }
    // An unfinished sequence cut off by the end of the input may still be completed.
    if (hold_incomplete_tail && p.length > 0 && pos + p.length == bytes.size()) break;
    append(r.text, kReplacement);
    pos += p.length == 0 ? 1 : p.length;
  }
  r.consumed = pos;
  return r;
}

}  // namespace fp8llm::utf8
