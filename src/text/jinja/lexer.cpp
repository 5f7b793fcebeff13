#include "text/jinja/lexer.h"

#include <cerrno>
#include <cstdlib>

#include "text/jinja/eval_error.h"
#include "text/jinja/python_str.h"

namespace fp8llm::jinja {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// jinja2 works on source whose line endings are "\n" and, as keep_trailing_newline is off, drops
// one trailing newline.
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's `\s`: whitespace code points, here at a UTF-8 position. Returns the byte length of the
// whitespace code point at `pos`, or 0.
size_t space_length(const std::string& s, size_t pos) {
  const auto c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) return py::is_space(c) ? 1 : 0;
  size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
  if (pos + len > s.size()) return 0;
  const std::u32string cp = py::decode(std::string_view(s).substr(pos, len));
  return cp.size() == 1 && py::is_space(cp[0]) ? len : 0;
}

class Lexer {
 public:
  Lexer(std::string_view source, const std::string& name, const LexOptions& options)
      : src_(normalize_newlines(source)), name_(name), options_(options) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag_start(pos_);
      if (tag == std::string::npos) {
        emit(TokenKind::kData, src_.substr(pos_), line_);
        advance_to(src_.size());
        break;
      }
      const char kind = src_[tag + 1];
      const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')
                            ? src_[tag + 2]
                            : '\0';
      size_t raw_body = 0;
      const bool raw = kind == '%' && match_raw_begin(tag, &raw_body);
      emit_data_before_tag(tag, sign, kind != '{');
      advance_to(tag);
      const int tag_line = line_;
      advance_to(tag + 2 + (sign ? 1 : 0));
      line_starting_ = false;
      if (raw) {
        lex_raw(raw_body, tag_line);
      } else if (kind == '#') {
        lex_comment(tag_line);
      } else {
        emit(kind == '%' ? TokenKind::kBlockBegin : TokenKind::kVariableBegin, "", tag_line);
        lex_tag(kind == '%', tag_line);
      }
    }
    emit(TokenKind::kEnd, "", line_);
    return std::move(tokens_);
  }

 private:
  bool at(size_t p, std::string_view s) const { return src_.compare(p, s.size(), s) == 0; }

  [[noreturn]] void fail(int line, const std::string& message) const {
    fail_at(name_, line, "{}", message);
  }

  void emit(TokenKind kind, std::string text, int line) {
    tokens_.push_back(Token{kind, std::move(text), 0, 0, line});
  }

  // Moves to `p`, counting the newlines passed.
  void advance_to(size_t p) {
    for (size_t i = pos_; i < p; ++i) {
      if (src_[i] == '\n') ++line_;
    }
    pos_ = p;
  }

  size_t skip_whitespace(size_t p) const {
    while (p < src_.size()) {
      const size_t len = space_length(src_, p);
      if (len == 0) break;
      p += len;
    }
    return p;
  }

  size_t find_tag_start(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '%' || src_[p + 1] == '{' || src_[p + 1] == '#')) {
        return p;
      }
    }
    return std::string::npos;
  }

  // `{%[-+]?\s*raw\s*(-%}\s*|%})` at `tag`; sets *body to where the raw text starts.
  bool match_raw_begin(size_t tag, size_t* body) const {
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p = skip_whitespace(p);
    if (!at(p, "raw")) return false;
    p = skip_whitespace(p + 3);
    if (at(p, "-%}")) {
      *body = skip_whitespace(p + 3);
      return true;
    }
    if (at(p, "%}")) {
      *body = p + 2;
      return true;
    }
    return false;
  }

  // The text from pos_ up to a tag starting at `tag`, with the tag's whitespace control applied:
  // "-" strips all whitespace before it; otherwise lstrip_blocks strips spaces and tabs back to
  // the line start for block and comment tags (not "{{", and not when the tag says "+").
  void emit_data_before_tag(size_t tag, char sign, bool strippable_tag) {
    std::string text = src_.substr(pos_, tag - pos_);
    if (sign == '-') {
      text = py::strip(text, std::nullopt, false, true);
    } else if (sign != '+' && options_.lstrip_blocks && strippable_tag) {
      const size_t line_start = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
      if ((line_start > 0 || line_starting_) &&
          text.find_first_not_of(" \t", line_start) == std::string::npos) {
        text.resize(line_start);
      }
    }
    if (!text.empty()) emit(TokenKind::kData, std::move(text), line_);
  }

  // After a block or comment end: "-" eats all whitespace, "+" nothing, otherwise trim_blocks
  // eats one newline.
  void finish_tag(char end_sign, size_t after_end, bool trimmable) {
    size_t p = after_end;
    if (end_sign == '-') {
      p = skip_whitespace(p);
    } else if (end_sign != '+' && trimmable && options_.trim_blocks && p < src_.size() &&
               src_[p] == '\n') {
      ++p;
    }
    advance_to(p);
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
  }

  void lex_comment(int tag_line) {
    const size_t close = src_.find("#}", pos_);
    if (close == std::string::npos) fail(tag_line, "missing end of comment tag '#}'");
    char end_sign = '\0';
    if (close > pos_ && (src_[close - 1] == '-' || src_[close - 1] == '+'))
      end_sign = src_[close - 1];
    finish_tag(end_sign, close + 2, true);
  }

  void lex_raw(size_t body, int tag_line) {
    advance_to(body);
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
    for (size_t p = src_.find("{%", pos_); p != std::string::npos; p = src_.find("{%", p + 1)) {
      size_t q = p + 2;
      char sign = '\0';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_whitespace(q);
      if (!at(q, "endraw")) continue;
      q = skip_whitespace(q + 6);
      char end_sign = '\0';
      if (at(q, "+%}") || at(q, "-%}")) {
        end_sign = src_[q];
        q += 3;
      } else if (at(q, "%}")) {
        q += 2;
      } else {
        continue;
      }
      emit_data_before_tag(p, sign, true);
      advance_to(p);
      finish_tag(end_sign, q, true);
      return;
    }
    fail(tag_line, "missing end of raw directive '{% endraw %}'");
  }

  void lex_tag(bool block, int tag_line) {
    std::vector<char> closers;  // brackets opened inside the tag, innermost last
    while (true) {
      if (pos_ >= src_.size()) {
        fail(tag_line, block ? "unexpected end of template: '{%' is never closed by '%}'"
                             : "unexpected end of template: '{{' is never closed by '}}'");
      }
      if (closers.empty()) {
        const TokenKind end_kind = block ? TokenKind::kBlockEnd : TokenKind::kVariableEnd;
        const std::string_view end = block ? "%}" : "}}";
        for (char sign : {'+', '-'}) {
          if (src_[pos_] == sign && at(pos_ + 1, end) && (block || sign == '-')) {
            emit(end_kind, "", line_);
            finish_tag(sign, pos_ + 3, block);
            return;
          }
        }
        if (at(pos_, end)) {
          emit(end_kind, "", line_);
          finish_tag('\0', pos_ + 2, block);
          return;
        }
      }
      const char c = src_[pos_];
      if (const size_t space = space_length(src_, pos_); space > 0) {
        advance_to(pos_ + space);
      } else if (is_digit(c)) {
        lex_number();
      } else if (is_name_start(c)) {
        size_t end = pos_;
        while (end < src_.size() && is_name_char(src_[end])) ++end;
        emit(TokenKind::kName, src_.substr(pos_, end - pos_), line_);
        pos_ = end;
      } else if (c == '\'' || c == '"') {
        lex_string();
      } else {
        lex_operator(closers);
      }
    }
  }

  // \d+(_\d+)* at p; returns the end, or p if none.
  size_t scan_digits(size_t p) const {
    if (p >= src_.size() || !is_digit(src_[p])) return p;
    while (p < src_.size() && is_digit(src_[p])) ++p;
    while (p + 1 < src_.size() && src_[p] == '_' && is_digit(src_[p + 1])) {
      ++p;
      while (p < src_.size() && is_digit(src_[p])) ++p;
    }
    return p;
  }

  static std::string without_underscores(std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c != '_') out.push_back(c);
    }
    return out;
  }

  void lex_number() {
    const int line = line_;
    // Floats first, as jinja2 tries them before integers (and not right after a '.', so that
    // `x.0.1` is two item lookups).
    if (pos_ == 0 || src_[pos_ - 1] != '.') {
      const size_t int_end = scan_digits(pos_);
      size_t end = std::string::npos;
      size_t p = int_end;
      if (p < src_.size() && src_[p] == '.' && scan_digits(p + 1) > p + 1) p = scan_digits(p + 1);
      if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
        size_t q = p + 1;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
        if (scan_digits(q) > q) end = scan_digits(q);
      }
      if (end == std::string::npos && p > int_end) end = p;
      if (end != std::string::npos) {
        Token t{TokenKind::kFloat, src_.substr(pos_, end - pos_), 0, 0, line};
        t.float_value = std::strtod(without_underscores(t.text).c_str(), nullptr);
        tokens_.push_back(std::move(t));
        pos_ = end;
        return;
      }
    }
    int base = 10;
    size_t start = pos_;
    size_t end = pos_;
    if (src_[pos_] == '0' && pos_ + 1 < src_.size()) {
      const char prefix = static_cast<char>(src_[pos_ + 1] | 0x20);
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : prefix == 'x' ? 16 : 10;
    }
    if (base != 10) {
      start = end = pos_ + 2;
      while (end < src_.size()) {
        const size_t digit_at = src_[end] == '_' ? end + 1 : end;
        if (digit_at >= src_.size()) break;
        const int v = hex_value(src_[digit_at]);
        if (v < 0 || v >= base) break;
        end = digit_at + 1;
      }
      if (end == start) base = 10;  // "0x" alone: the integer 0 followed by a name
    }
    if (base == 10) {
      start = end = pos_;
      if (src_[pos_] == '0') {
        ++end;
        while (end < src_.size() &&
               (src_[end] == '0' ||
                (src_[end] == '_' && end + 1 < src_.size() && src_[end + 1] == '0'))) {
          ++end;
        }
      } else {
        end = scan_digits(pos_);
      }
    }
    Token t{TokenKind::kInteger, src_.substr(pos_, end - pos_), 0, 0, line};
    errno = 0;
    t.int_value =
        std::strtoll(without_underscores(src_.substr(start, end - start)).c_str(), nullptr, base);
    if (errno == ERANGE) fail(line, "integer literal " + t.text + " does not fit in 64 bits");
    tokens_.push_back(std::move(t));
    pos_ = end;
  }

  void lex_string() {
    const int line = line_;
    const char quote = src_[pos_];
    std::string value;
    size_t p = pos_ + 1;
    while (true) {
      if (p >= src_.size()) fail(line, "unterminated string literal");
      const char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) fail(line, "unterminated string literal");
      p = decode_escape(p, value, line);
    }
    emit(TokenKind::kString, std::move(value), line);
    advance_to(p + 1);
  }

  // Python's unicode_escape for the escape at `p` (a backslash); returns the position after it.
  size_t decode_escape(size_t p, std::string& out, int line) const {
    const char e = src_[p + 1];
    auto hex_escape = [&](size_t digits) {
      char32_t v = 0;
      for (size_t i = 0; i < digits; ++i) {
        const size_t at_i = p + 2 + i;
        const int h = at_i < src_.size() ? hex_value(src_[at_i]) : -1;
        if (h < 0) fail(line, "invalid \\" + std::string(1, e) + " escape in string literal");
        v = v * 16 + static_cast<char32_t>(h);
      }
      if (v > 0x10FFFF) fail(line, "invalid \\U escape in string literal");
      py::append_utf8(out, v);
      return p + 2 + digits;
    };
    switch (e) {
      case '\n':
        return p + 2;
      case '\\':
      case '\'':
      case '"':
        out.push_back(e);
        return p + 2;
      case 'a':
        out.push_back('\a');
        return p + 2;
      case 'b':
        out.push_back('\b');
        return p + 2;
      case 'f':
        out.push_back('\f');
        return p + 2;
      case 'n':
        out.push_back('\n');
        return p + 2;
      case 'r':
        out.push_back('\r');
        return p + 2;
      case 't':
        out.push_back('\t');
        return p + 2;
      case 'v':
        out.push_back('\v');
        return p + 2;
      case 'x':
        return hex_escape(2);
      case 'u':
        return hex_escape(4);
      case 'U':
        return hex_escape(8);
      case 'N':
        fail(line, "\\N{...} escapes are not supported in string literals");
      default:
        break;
    }
    if (e >= '0' && e <= '7') {
      char32_t v = 0;
      size_t q = p + 1;
      while (q < src_.size() && q < p + 4 && src_[q] >= '0' && src_[q] <= '7')
        v = v * 8 + (src_[q++] - '0');
      py::append_utf8(out, v);
      return q;
    }
    out.push_back('\\');  // unknown escapes keep their backslash, as in Python
    return p + 1;
  }

  void lex_operator(std::vector<char>& closers) {
    static const std::string_view kTwoChar[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwoChar) {
      if (at(pos_, op)) {
        emit(TokenKind::kOperator, std::string(op), line_);
        pos_ += 2;
        return;
      }
    }
    const char c = src_[pos_];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      const std::u32string cp = py::decode(std::string_view(src_).substr(pos_, 4));
      std::string shown;
      py::append_utf8(shown, cp.empty() ? U'?' : cp[0]);
      fail(line_, "unexpected character '" + shown + "'");
    }
    if (c == '(' || c == '[' || c == '{') {
      closers.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (closers.empty()) fail(line_, std::string("unexpected '") + c + "'");
      if (closers.back() != c) {
        fail(line_, std::string("unexpected '") + c + "', expected '" + closers.back() + "'");
      }
      closers.pop_back();
    }
    emit(TokenKind::kOperator, std::string(1, c), line_);
    ++pos_;
  }

  std::string src_;
  const std::string& name_;
  LexOptions options_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const std::string& template_name,
                            const LexOptions& options) {
  return Lexer(source, template_name, options).run();
}

}  // namespace fp8llm::jinja
