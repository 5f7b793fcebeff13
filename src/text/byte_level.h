// The GPT-2 byte-level alphabet: each of the 256 byte values is written as one printable Unicode
// character (printable ASCII and Latin-1 map to themselves, the rest to U+0100..U+0143), so a BPE
// vocabulary over these characters covers every byte string without an unknown token.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fp8llm {

// The character that stands for byte `b`.
char32_t byte_level_char(uint8_t b);

// The byte that character `c` stands for, or nullopt if `c` is outside the alphabet.
std::optional<uint8_t> byte_level_byte(char32_t c);

// Appends `bytes` written in the alphabet (each byte becomes one 1- or 2-byte UTF-8 character).
void append_byte_level(std::string& out, std::string_view bytes);

// The bytes a token written in the alphabet stands for, or nullopt if `token` (valid UTF-8)
// contains a character outside the alphabet.
std::optional<std::string> byte_level_decode(std::string_view token);

// The regex a ByteLevel pre-tokenizer applies itself when `use_regex` is set (GPT-2's).
inline constexpr std::string_view kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace fp8llm
