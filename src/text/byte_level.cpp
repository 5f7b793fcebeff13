#include "text/byte_level.h"

#include <array>

#include "text/utf8.h"

namespace fp8llm {
namespace {

struct Alphabet {
  std::array<char32_t, 256> byte_to_char{};
  std::array<int16_t, 0x144> char_to_byte{};  // -1 where the character is not in the alphabet
  std::array<std::string, 256> utf8{};        // byte_to_char, UTF-8 encoded

  Alphabet() {
    // Bytes that are printable on their own keep their code point; the others are numbered from
    // U+0100 in byte order (GPT-2's bytes_to_unicode).
    const auto keeps_itself = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char_to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const char32_t c = keeps_itself(b) ? static_cast<char32_t>(b) : next++;
      byte_to_char[b] = c;
      char_to_byte[c] = static_cast<int16_t>(b);
      utf8::append(utf8[b], c);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

char32_t byte_level_char(uint8_t b) {
  return alphabet().byte_to_char[b];
}

std::optional<uint8_t> byte_level_byte(char32_t c) {
  const auto& table = alphabet().char_to_byte;
  if (c >= table.size() || table[c] < 0) return std::nullopt;
  return static_cast<uint8_t>(table[c]);
}

void append_byte_level(std::string& out, std::string_view bytes) {
  const auto& a = alphabet();
  for (const char ch : bytes) out += a.utf8[static_cast<uint8_t>(ch)];
}

std::optional<std::string> byte_level_decode(std::string_view token) {
  std::string bytes;
  bytes.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    const auto b = byte_level_byte(utf8::next(token, pos));
    if (!b) return std::nullopt;
    bytes.push_back(static_cast<char>(*b));
  }
  return bytes;
}

}  // namespace fp8llm
