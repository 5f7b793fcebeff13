// Python's str semantics on UTF-8 strings: templates index, slice, strip, split and case-map text
// by code point, and print numbers the way Python's str() does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fp8llm::jinja::py {

// UTF-8 <-> code points. Bytes that are not valid UTF-8 decode to U+DC80..U+DCFF and encode back
// to the same byte (Python's "surrogateescape"), so any input survives a round trip.
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
size_t length(std::string_view s);

// str.isspace() for one code point.
bool is_space(char32_t c);

// str.strip / lstrip / rstrip; `chars` absent means whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right);

// str.split / str.rsplit; `sep` absent means runs of whitespace. maxsplit < 0 means no limit.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep,
                               int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep,
                                int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);

// str.replace with Python's count (< 0: all); an empty `old` inserts between code points.
std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                    int64_t count);

// Unicode case mapping by utf8proc (the Unicode version of the installed libutf8proc). The
// one-code-point forms are the simple mappings; upper() and lower() apply the full ones, as
// Python does ("ß" -> "SS"), except lower()'s final-sigma rule. capitalize() and title() use the
// simple titlecase mapping ("ǆ" -> "ǅ"), where Python's full one also expands ligatures and "ß".
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
char32_t to_title(char32_t c);
bool is_upper(char32_t c);
bool is_lower(char32_t c);
bool is_alpha(char32_t c);
bool is_digit(char32_t c);
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);  // str.capitalize
std::string title(std::string_view s);       // str.title

// repr() of a float and of a string, as Python prints them.
std::string float_repr(double v);
std::string string_repr(std::string_view s);

}  // namespace fp8llm::jinja::py
