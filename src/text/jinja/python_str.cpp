#include "text/jinja/python_str.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>
#include <utf8proc.h>

#include "text/utf8.h"

#include "text/jinja/limits.h"

namespace fp8llm::jinja::py {
namespace {

constexpr char32_t kEscapeBase = 0xDC00;  // surrogateescape: byte b <-> U+DC00 + b (b >= 0x80)

utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

// str.upper is Unicode's full mapping (SpecialCasing.txt: "ß" -> "SS", "ﬁ" -> "FI"), which
// utf8proc does not offer; its simple mapping differs exactly where the full case folding expands
// a character that is not an uppercase letter, and there the full uppercase is the simple
// uppercase of each folded character (checked against Python 3.11 for every code point of
// Unicode 14).
void append_upper(std::u32string& out, char32_t c) {
  const auto cp = static_cast<utf8proc_int32_t>(c);
  if (c >= 0x80 && category(c) != UTF8PROC_CATEGORY_LU) {
    utf8proc_int32_t folded[4];
    int boundclass = 0;
    const utf8proc_ssize_t n =
        utf8proc_decompose_char(cp, folded, 4, UTF8PROC_CASEFOLD, &boundclass);
    if (n > 1 && n <= 4) {
      for (utf8proc_ssize_t i = 0; i < n; ++i)
        out.push_back(to_upper(static_cast<char32_t>(folded[i])));
      return;
    }
  }
  out.push_back(to_upper(c));
}

// str.lower is the full mapping too, which adds one expansion to the simple one: U+0130 (I with
// dot above) becomes "i" and U+0307. Python's final-sigma rule (a word-final capital sigma
// lowers to U+03C2) is not applied: every capital sigma lowers to U+03C3.
void append_lower(std::u32string& out, char32_t c) {
  if (c == 0x130) {
    out.push_back(U'i');
    out.push_back(0x307);
    return;
  }
  out.push_back(to_lower(c));
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

std::vector<std::string> encode_all(const std::vector<std::u32string>& parts) {
  std::vector<std::string> out;
  out.reserve(parts.size());
  for (const auto& p : parts) out.push_back(encode(p));
  return out;
}

}  // namespace

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int extra = 0;
    char32_t c = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) {
      extra = 1, c = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      extra = 2, c = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      extra = 3, c = b0 & 0x07, min = 0x10000;
    } else {
      extra = -1;
    }
    bool ok = extra > 0;
    if (ok) {
      for (int k = 1; k <= extra; ++k) {
        if (i + k >= s.size()) {
          ok = false;
          break;
        }
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) {
          ok = false;
          break;
        }
        c = (c << 6) | (b & 0x3F);
      }
    }
    if (ok && (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))) ok = false;
    if (ok) {
      out.push_back(c);
      i += extra + 1;
    } else {
      out.push_back(kEscapeBase + b0);
      ++i;
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c >= kEscapeBase + 0x80 && c <= kEscapeBase + 0xFF) {
    out.push_back(static_cast<char>(c - kEscapeBase));
  } else {
    utf8::append(out, c);
  }
}

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t length(std::string_view s) {
  bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
  return ascii ? s.size() : decode(s).size();
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right) {
  const std::u32string text = decode(s);
  const std::u32string set = chars ? decode(*chars) : std::u32string();
  auto strippable = [&](char32_t c) {
    return chars ? set.find(c) != std::u32string::npos : is_space(c);
  };
  size_t begin = 0;
  size_t end = text.size();
  if (left) {
    while (begin < end && strippable(text[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strippable(text[end - 1])) --end;
  }
  return encode(std::u32string_view(text).substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep,
                               int64_t maxsplit) {
  int64_t budget = maxsplit < 0 ? INT64_MAX : maxsplit;
  if (sep) {
    std::vector<std::string> out;
    size_t start = 0;
    while (budget-- > 0) {
      const size_t hit = s.find(*sep, start);
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(start, hit - start));
      start = hit + sep->size();
    }
    out.emplace_back(s.substr(start));
    return out;
  }
  const std::u32string text = decode(s);
  std::vector<std::u32string> parts;
  size_t i = 0;
  const size_t n = text.size();
  while (budget-- > 0) {
    while (i < n && is_space(text[i])) ++i;
    if (i == n) break;
    const size_t j = i;
    ++i;
    while (i < n && !is_space(text[i])) ++i;
    parts.push_back(text.substr(j, i - j));
  }
  if (i < n) {
    while (i < n && is_space(text[i])) ++i;
    if (i != n) parts.push_back(text.substr(i));
  }
  return encode_all(parts);
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep,
                                int64_t maxsplit) {
  int64_t budget = maxsplit < 0 ? INT64_MAX : maxsplit;
  std::vector<std::string> out;
  if (sep) {
    size_t end = s.size();
    while (budget-- > 0) {
      if (end < sep->size()) break;
      const size_t hit = s.rfind(*sep, end - sep->size());
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    out.emplace_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
    return out;
  }
  const std::u32string text = decode(s);
  std::vector<std::u32string> parts;
  int64_t i = static_cast<int64_t>(text.size()) - 1;
  while (budget-- > 0) {
    while (i >= 0 && is_space(text[i])) --i;
    if (i < 0) break;
    const int64_t j = i;
    --i;
    while (i >= 0 && !is_space(text[i])) --i;
    parts.push_back(text.substr(i + 1, j - i));
  }
  if (i >= 0) {
    while (i >= 0 && is_space(text[i])) --i;
    if (i >= 0) parts.push_back(text.substr(0, i + 1));
  }
  std::reverse(parts.begin(), parts.end());
  return encode_all(parts);
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  const std::u32string text = decode(s);
  std::vector<std::u32string> parts;
  size_t start = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_line_break(text[i])) {
      ++i;
      continue;
    }
    size_t eol = i + 1;
    if (text[i] == '\r' && eol < text.size() && text[eol] == '\n') ++eol;
    parts.push_back(text.substr(start, (keepends ? eol : i) - start));
    start = i = eol;
  }
  if (start < text.size()) parts.push_back(text.substr(start));
  return encode_all(parts);
}

std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                    int64_t count) {
  int64_t budget = count < 0 ? INT64_MAX : count;
  std::string out;
  if (old_text.empty()) {
    const std::u32string text = decode(s);
    for (size_t i = 0; i <= text.size(); ++i) {
      if (budget-- > 0) append_bounded(out, new_text);
      if (i < text.size()) append_utf8(out, text[i]);
    }
    return out;
  }
  size_t start = 0;
  while (budget-- > 0) {
    const size_t hit = s.find(old_text, start);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(start, hit - start));
    append_bounded(out, new_text);
    start = hit + old_text.size();
  }
  out.append(s.substr(start));
  return out;
}

char32_t to_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
}

char32_t to_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
}

char32_t to_title(char32_t c) {
  if (c < 0x80) return to_upper(c);
  return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c)));
}

// Python's Uppercase and Lowercase properties: the letter categories, plus the characters that
// case-map like letters (circled letters, for example).
bool is_upper(char32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z';
  const auto cp = static_cast<utf8proc_int32_t>(c);
  return category(c) == UTF8PROC_CATEGORY_LU || utf8proc_isupper(cp);
}

bool is_lower(char32_t c) {
  if (c < 0x80) return c >= 'a' && c <= 'z';
  const auto cp = static_cast<utf8proc_int32_t>(c);
  return category(c) == UTF8PROC_CATEGORY_LL || utf8proc_islower(cp);
}

bool is_alpha(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  const utf8proc_category_t k = category(c);
  return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

// Decimal digits (category Nd); Python's isdigit also counts digits such as superscripts.
bool is_digit(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return category(c) == UTF8PROC_CATEGORY_ND;
}

std::string upper(std::string_view s) {
  std::u32string out;
  for (const char32_t c : decode(s)) append_upper(out, c);
  return encode(out);
}

std::string lower(std::string_view s) {
  std::u32string out;
  for (const char32_t c : decode(s)) append_lower(out, c);
  return encode(out);
}

std::string capitalize(std::string_view s) {
  std::u32string out;
  const std::u32string text = decode(s);
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 0) {
      out.push_back(to_title(text[i]));
    } else {
      append_lower(out, text[i]);
    }
  }
  return encode(out);
}

std::string title(std::string_view s) {
  std::u32string out;
  bool previous_is_cased = false;
  for (const char32_t c : decode(s)) {
    if (previous_is_cased) {
      append_lower(out, c);
    } else {
      out.push_back(to_title(c));
    }
    previous_is_cased = is_upper(c) || is_lower(c) || category(c) == UTF8PROC_CATEGORY_LT;
  }
  return encode(out);
}

std::string float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: fixed notation for 1e-4 <= |v| < 1e16.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exponent = std::atoi(sci.c_str() + e + 1);
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  const int decpt = exponent + 1;
  // Built with append(): GCC 12 warns falsely (-Wrestrict) about "literal" + std::string.
  std::string out = negative ? "-" : "";
  if (decpt <= -4 || decpt > 16) {
    out.push_back(digits[0]);
    if (digits.size() > 1) out.append(".").append(digits, 1, std::string::npos);
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  } else if (decpt <= 0) {
    out.append("0.").append(static_cast<size_t>(-decpt), '0').append(digits);
  } else if (decpt >= static_cast<int>(digits.size())) {
    out.append(digits).append(decpt - digits.size(), '0').append(".0");
  } else {
    out.append(digits, 0, decpt).append(".").append(digits, decpt, std::string::npos);
  }
  return out;
}

std::string string_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) {
      out += fmt::format("\\x{:02x}", static_cast<uint32_t>(c));
    } else if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
               (c >= 0x205F && c <= 0x2064) || c == 0x3000 || c == 0xFEFF ||
               (c >= 0xD800 && c <= 0xDFFF) || (c >= 0xE000 && c <= 0xF8FF)) {
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(c));
    } else if (c >= 0xF0000) {
      out += fmt::format("\\U{:08x}", static_cast<uint32_t>(c));
    } else {
      append_utf8(out, c);
    }
  }
  out.push_back(quote);
  return out;
}

}  // namespace fp8llm::jinja::py
