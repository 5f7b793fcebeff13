// A sample's text as its tokens come: a stop string ends it just before the string (text that
// may begin one is held back until it cannot), or just after it with include_stop (text goes out
// at once, and a stop string reaching back into it is still found); the earliest stop string
// wins; special tokens add text only when asked.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"
#include "text/text_stream.h"
#include "text/tokenizer.h"

namespace fp8llm {
namespace {

const std::string kText = "The quick brown fox jumps over the lazy dog";

struct Streamed {
  std::string text;
  bool stopped = false;
  std::vector<std::string> pieces;  // what each put() returned
};

Streamed stream(const Tokenizer& tok, const std::vector<int32_t>& ids,
                std::vector<std::string> stops, TextStreamOptions options) {
  TextStream s(tok, std::move(stops), options);
  Streamed out;
  for (const int32_t id : ids) {
    out.pieces.push_back(s.put(id));
    out.text += out.pieces.back();
    if (s.stopped()) break;
  }
  out.text += s.finish();
  out.stopped = s.stopped();
  EXPECT_EQ(out.text, s.text());
  return out;
}

TEST(TextStream, StopStringsEndTheTextBeforeOrAfterThem) {
  const Tokenizer tok = Tokenizer::load(test::data_path("tiny-llama"));
  const std::vector<int32_t> ids = tok.encode(kText, false);
  ASSERT_GT(ids.size(), 5u);
  const TextStreamOptions include{.include_stop = true};
  EXPECT_EQ(stream(tok, ids, {}, {}).text, kText);
  EXPECT_EQ(stream(tok, ids, {"brown"}, {}).text, "The quick ");
  EXPECT_EQ(stream(tok, ids, {"brown"}, include).text, "The quick brown");
  // Across tokens, beginning in text already out.
  const Streamed across = stream(tok, ids, {"own fox j"}, include);
  EXPECT_EQ(across.text, "The quick brown fox j");
  EXPECT_TRUE(across.stopped);
  // The earliest in the text, whatever the order of the list.
  EXPECT_EQ(stream(tok, ids, {"lazy", "fox"}, include).text, "The quick brown fox");
  EXPECT_EQ(stream(tok, ids, {"lazy", "fox"}, {}).text, "The quick brown ");
  const Streamed none = stream(tok, ids, {"cat"}, include);
  EXPECT_EQ(none.text, kText);
  EXPECT_FALSE(none.stopped);
  // Nothing is held back with include_stop: each token's text goes out with it. Without it, the
  // last two bytes wait (they might begin "cat").
  const std::string first = tok.decode(std::vector<int32_t>{ids.front()});
  EXPECT_EQ(none.pieces.front(), first);
  EXPECT_EQ(stream(tok, ids, {"cat"}, {}).pieces.front(), first.substr(0, first.size() - 2));
}

TEST(TextStream, SpecialTokensAddTextOnlyWhenAsked) {
  const Tokenizer tok = Tokenizer::load(test::data_path("tiny-llama"));
  std::vector<int32_t> ids = tok.encode("Hi", true);  // <|begin_of_text|> first
  ASSERT_GE(ids.size(), 2u);
  const std::string special = tok.decode(std::vector<int32_t>{ids[0]});
  EXPECT_EQ(special, "<|begin_of_text|>");
  EXPECT_EQ(stream(tok, ids, {}, {}).text, "Hi");
  EXPECT_EQ(stream(tok, ids, {}, {.skip_special_tokens = false}).text, special + "Hi");
}

}  // namespace
}  // namespace fp8llm
