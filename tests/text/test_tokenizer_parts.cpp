// The tokenizer's building blocks on their own: UTF-8 handling, the byte-level alphabet, regex
// matching, Split behaviors and NFC.
#include <gtest/gtest.h>

#include <random>

#include "text/byte_level.h"
#include "text/pre_tokenizer.h"
#include "text/regex.h"
#include "text/unicode_nfc.h"
#include "text/utf8.h"

namespace fp8llm {
namespace {

TEST(Utf8, FindInvalid) {
  EXPECT_EQ(utf8::find_invalid("plain \u00e9\u4F60\U0001F600"), std::nullopt);
  EXPECT_EQ(utf8::find_invalid("ab\x80"), 2u);
  EXPECT_EQ(utf8::find_invalid("a\xC0\xAF"), 1u);         // overlong '/'
  EXPECT_EQ(utf8::find_invalid("\xED\xA0\x80"), 0u);      // surrogate
  EXPECT_EQ(utf8::find_invalid("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(utf8::find_invalid("xy\xE4\xBD"), 2u);        // cut off
}

TEST(Utf8, LossyUsesMaximalSubparts) {
  // As Rust's from_utf8_lossy: one U+FFFD per maximal prefix of a valid sequence.
  EXPECT_EQ(utf8::lossy("a\xF0\x9F\x91z", false).text, "a\uFFFDz");
  EXPECT_EQ(utf8::lossy("\xE0\x80\x80", false).text, "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(utf8::lossy("\xF8\x88\x80\x80\x80", false).text, "\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD");
  const auto held = utf8::lossy("ok\xF0\x9F\x91", true);
  EXPECT_EQ(held.text, "ok");
  EXPECT_EQ(held.consumed, 2u);
  EXPECT_EQ(utf8::lossy("ok\xF0\x9F\x91", false).text, "ok\uFFFD");
}

TEST(Utf8, NextAndAppendRoundTrip) {
  for (const char32_t cp :
       {U'\0', U'A', U'\u00e9', U'\u07FF', U'\u0800', U'\uFFFD', U'\U00010000', U'\U0010FFFF'}) {
    std::string s;
    utf8::append(s, cp);
    size_t pos = 0;
    EXPECT_EQ(utf8::next(s, pos), cp);
    EXPECT_EQ(pos, s.size());
  }
}

TEST(Utf8, CompletePrefixHoldsBackAnUnfinishedCharacter) {
  EXPECT_EQ(utf8::complete_prefix(""), 0u);
  EXPECT_EQ(utf8::complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8::complete_prefix("a\u00e9"), 3u);
  EXPECT_EQ(utf8::complete_prefix("a\xC3"), 1u);              // first byte of U+00E9
  EXPECT_EQ(utf8::complete_prefix("a\xE4\xBD"), 1u);          // two bytes of U+4F60
  EXPECT_EQ(utf8::complete_prefix("a\xF0\x9F\x98"), 1u);      // three bytes of U+1F600
  EXPECT_EQ(utf8::complete_prefix("a\xF0\x9F\x98\x80"), 5u);  // all of U+1F600
  // Bytes that no continuation can complete are not held back: waiting would never end.
  EXPECT_EQ(utf8::complete_prefix("a\x80"), 2u);      // a stray continuation byte
  EXPECT_EQ(utf8::complete_prefix("a\xC3("), 3u);     // a broken sequence
  EXPECT_EQ(utf8::complete_prefix("a\xED\xA0"), 3u);  // a surrogate's start
  EXPECT_EQ(utf8::complete_prefix("\x80\x80\x80\x80\x80"), 5u);
}

TEST(ByteLevel, Gpt2Alphabet) {
  EXPECT_EQ(byte_level_char(' '), U'\u0120');   // Ġ
  EXPECT_EQ(byte_level_char('\n'), U'\u010A');  // Ċ
  EXPECT_EQ(byte_level_char(0), U'\u0100');
  EXPECT_EQ(byte_level_char(0x7F), U'\u0121');
  EXPECT_EQ(byte_level_char(0xAD), U'\u0143');
  EXPECT_EQ(byte_level_char('a'), U'a');
  EXPECT_EQ(byte_level_char(0xE9), U'\u00e9');
  for (int b = 0; b < 256; ++b) EXPECT_EQ(byte_level_byte(byte_level_char(b)), b);
  EXPECT_EQ(byte_level_byte(U' '), std::nullopt);
  EXPECT_EQ(byte_level_byte(U'\u0144'), std::nullopt);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string mapped;
  append_byte_level(mapped, all);
  EXPECT_EQ(byte_level_decode(mapped), all);
  EXPECT_EQ(byte_level_decode("a b"), std::nullopt);
}

std::vector<std::string> matches(const Regex& re, std::string_view text) {
  std::vector<std::pair<size_t, size_t>> m;
  re.find_all(text, m);
  std::vector<std::string> out;
  for (const auto& [b, e] : m) out.emplace_back(text.substr(b, e - b));
  return out;
}

TEST(Regex, WhitespaceIsUnicodeWhiteSpace) {
  const Regex re(R"(\s+|\S+)", false, "test");
  // U+0085 and U+3000 are white space; U+180E has not been since Unicode 6.3.
  EXPECT_EQ(matches(re, "a\u0085b\u180Ec\u3000"),
            (std::vector<std::string>{"a", "\u0085", "b\u180Ec", "\u3000"}));
  const Regex cls(R"([^\s\p{L}]+)", false, "test");
  EXPECT_EQ(matches(cls, "1 2\u180E\u00a0x!"), (std::vector<std::string>{"1", "2\u180E", "!"}));
  EXPECT_EQ(
      rewrite_for_pcre2(R"(\\s[\]\s]\S)"),
      std::string(R"(\\s[\])") +
          R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}])" +
          R"([^\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}])");
}

TEST(Regex, EmptyMatchesFollowOniguruma) {
  // An empty match right after a match is skipped; elsewhere it is kept.
  const Regex re("x*", false, "test");
  std::vector<std::pair<size_t, size_t>> m;
  re.find_all("axxb", m);
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 3}, {4, 4}}));
  const Regex literal("a.b", true, "test");
  EXPECT_EQ(matches(literal, "a.bxa-b"), (std::vector<std::string>{"a.b"}));
}

TEST(Regex, Llama3PatternOnLongRuns) {
  const Regex re(
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
      false, "test");
  const std::string spaces(1 << 20, ' ');
  const auto m = matches(re, spaces + "x");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].size(), spaces.size() - 1);
  EXPECT_EQ(m[1], " x");
  EXPECT_EQ(matches(re, "I'LL 12345"), (std::vector<std::string>{"I", "'LL", " ", "123", "45"}));
}

std::vector<std::string> split(std::string_view text, SplitBehavior b, bool invert) {
  const Regex re("-", true, "test");
  std::vector<std::pair<size_t, size_t>> m, pieces;
  re.find_all(text, m);
  split_by_behavior(m, text.size(), b, invert, pieces);
  std::vector<std::string> out;
  for (const auto& [s, e] : pieces) out.emplace_back(text.substr(s, e - s));
  return out;
}

// The examples of tokenizers' SplitDelimiterBehavior documentation.
TEST(SplitBehavior, AllBehaviors) {
  using V = std::vector<std::string>;
  const std::string t = "the-final--countdown";
  EXPECT_EQ(split(t, SplitBehavior::kRemoved, false), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split(t, SplitBehavior::kIsolated, false),
            (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split(t, SplitBehavior::kMergedWithPrevious, false),
            (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split(t, SplitBehavior::kMergedWithNext, false),
            (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split(t, SplitBehavior::kContiguous, false),
            (V{"the", "-", "final", "--", "countdown"}));
  // Inverted: the text between delimiters is what matched.
  EXPECT_EQ(split(t, SplitBehavior::kRemoved, true), (V{"-", "-", "-"}));
  EXPECT_EQ(split(t, SplitBehavior::kMergedWithPrevious, true),
            (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split(t, SplitBehavior::kMergedWithNext, true),
            (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split(t, SplitBehavior::kContiguous, true),
            (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(split("-a-", SplitBehavior::kMergedWithPrevious, false), (V{"-", "a-"}));
  EXPECT_EQ(split("", SplitBehavior::kIsolated, false), V{});
}

TEST(Nfc, StandardExamples) {
  EXPECT_EQ(to_nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(to_nfc("\u212B"), "\u00C5");                // singleton (Angstrom sign)
  EXPECT_EQ(to_nfc("\u1E0B\u0323"), "\u1E0D\u0307");    // reordering, then composition
  EXPECT_EQ(to_nfc("q\u0307\u0323"), "q\u0323\u0307");  // reordering only
  EXPECT_EQ(to_nfc("\u0958"), "\u0915\u093C");          // composition exclusion
  EXPECT_EQ(to_nfc("\u1100\u1161\u11A8"), "\uAC01");    // Hangul L V T
  EXPECT_EQ(to_nfc("\uAC00\u11A8"), "\uAC01");          // Hangul LV T
  EXPECT_EQ(to_nfc("\u0301e"), "\u0301e");              // nothing before the mark
  EXPECT_EQ(to_nfc("a\u0328\u0301"), "\u0105\u0301");   // ogonek then acute
  EXPECT_EQ(to_nfc("\u00e9"), "\u00e9");
  EXPECT_TRUE(is_nfc_quick("plain ascii \u00e9 \u00fc"));
  EXPECT_FALSE(is_nfc_quick("e\u0301"));
  EXPECT_FALSE(is_nfc_quick("\u212B"));
  EXPECT_FALSE(is_nfc_quick("q\u0307\u0323"));
}

TEST(Nfc, ComposesDecomposedScripts) {
  // Greek with tonos and dialytika, Cyrillic short i and yo, Vietnamese stacked marks, Hangul
  // jamo: each decomposed form composes, and the composed form stays as it is.
  const std::pair<const char*, const char*> cases[] = {
      {"\u03B1\u0301\u03B9\u0308\u0301", "\u03AC\u0390"},        // ά ΐ
      {"\u0438\u0306\u0435\u0308", "\u0439\u0451"},              // й ё
      {"\u0065\u0323\u0302", "\u1EC7"},                          // ệ, marks in order
      {"\u0065\u0302\u0323", "\u1EC7"},                          // ệ, marks reordered
      {"\u1112\u1161\u11AB\u1100\u1173\u11AF", "\uD55C\uAE00"},  // 한글
      {"\u004F\u031B\u0300", "\u1EDC"},                          // Ờ
  };
  for (const auto& [decomposed, composed] : cases) {
    EXPECT_EQ(to_nfc(decomposed), composed) << decomposed;
    EXPECT_EQ(to_nfc(composed), composed) << composed;
  }
}

TEST(Nfc, KeepsNulAndCompatibilityCharacters) {
  // The text's length is passed along, so a U+0000 neither ends nor breaks the normalization.
  const std::string with_nul("a\0e\u0301", 5);
  EXPECT_EQ(to_nfc(with_nul), std::string("a\0\u00e9", 4));
  // NFC is canonical only: ligatures, full-width forms and superscripts stay (NFKC would fold
  // them).
  EXPECT_EQ(to_nfc("\uFB01 \uFF21 x\u00B2"), "\uFB01 \uFF21 x\u00B2");
  EXPECT_EQ(to_nfc(""), "");
}

TEST(Nfc, IdempotentAndStableOnRandomText) {
  std::mt19937 rng(7);
  const std::vector<char32_t> pool = {U'a',      U'e',      U'o',      U'\u0300', U'\u0301',
                                      U'\u0323', U'\u0328', U'\u0308', U'\u1100', U'\u1161',
                                      U'\u11A8', U'\uAC00', U'\u212B', U'\u00e9', U'\u0958'};
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < n; ++k) utf8::append(s, pool[rng() % pool.size()]);
    const std::string once = to_nfc(s);
    EXPECT_EQ(to_nfc(once), once) << s;
    if (is_nfc_quick(s)) {
      EXPECT_EQ(once, s);
    }
  }
}

}  // namespace
}  // namespace fp8llm
