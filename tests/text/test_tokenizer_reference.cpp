// The fixture tokenizers against outputs of the Hugging Face tokenizers library
// (tests/data/*/tokenizer_reference.json): every encode case, with and without special tokens,
// both decodes, and the token strings; and the chat-template texts tokenized as transformers does.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/file_util.h"
#include "test_util.h"
#include "text/stream_decoder.h"
#include "text/tokenizer.h"

namespace fp8llm {
namespace {

using nlohmann::json;

json reference(const std::string& model) {
  return json::parse(read_text_file(test::data_path(model + "/tokenizer_reference.json")));
}

std::vector<int32_t> ids_of(const json& j) {
  return j.get<std::vector<int32_t>>();
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTest, EveryEncodeCaseMatches) {
  const Tokenizer tok = Tokenizer::load(test::data_path(GetParam()));
  const json ref = reference(GetParam());
  ASSERT_GE(ref["encode"].size(), 30u);
  for (const json& c : ref["encode"]) {
    const std::string text = c["text"];
    SCOPED_TRACE(text);
    const auto ids = ids_of(c["ids"]);
    EXPECT_EQ(tok.encode(text), ids);
    EXPECT_EQ(tok.encode(text, /*add_special_tokens=*/false), ids_of(c["ids_no_special"]));
    EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>());
    EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true),
              c["decoded_skip_special"].get<std::string>());
    std::vector<std::string> tokens;
    for (const int32_t id : ids) tokens.push_back(tok.id_to_token(id).value_or("<none>"));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<std::string>>());
    for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tok.token_to_id(tokens[i]), ids[i]);
  }
}

// transformers tokenizes a rendered chat template without adding special tokens (the template
// writes them itself).
TEST_P(ReferenceTest, ChatTextsMatch) {
  const Tokenizer tok = Tokenizer::load(test::data_path(GetParam()));
  const json ref = reference(GetParam());
  ASSERT_FALSE(ref["chat"].empty());
  for (const json& c : ref["chat"]) {
    const std::string text = c["text"];
    SCOPED_TRACE(text);
    EXPECT_EQ(tok.encode(text, false), ids_of(c["ids"]));
    EXPECT_EQ(tok.decode(ids_of(c["ids"])), text);
  }
}

// Streaming every reference case token by token reproduces decode(), piece by piece valid UTF-8.
TEST_P(ReferenceTest, StreamingEqualsDecode) {
  const Tokenizer tok = Tokenizer::load(test::data_path(GetParam()));
  const json ref = reference(GetParam());
  for (const bool skip : {false, true}) {
    for (const json& c : ref["encode"]) {
      const auto ids = ids_of(c["ids"]);
      StreamDecoder stream(tok, skip);
      std::string out;
      for (const int32_t id : ids) out += stream.put(id);
      out += stream.flush();
      EXPECT_EQ(out, tok.decode(ids, skip));
      EXPECT_EQ(out, c[skip ? "decoded_skip_special" : "decoded"].get<std::string>());
    }
  }
}

TEST_P(ReferenceTest, EncodingIsTheSameWithoutTheCache) {
  const Tokenizer tok = Tokenizer::load(test::data_path(GetParam()));
  const json ref = reference(GetParam());
  for (const json& c : ref["encode"]) {
    tok.clear_cache();
    const auto cold = tok.encode(c["text"].get<std::string>());
    EXPECT_EQ(cold, tok.encode(c["text"].get<std::string>()));
    EXPECT_EQ(cold, ids_of(c["ids"]));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceTest,
                         ::testing::Values("tiny-llama", "tiny-qwen3", "tiny-qwen2"),
                         [](const auto& p) {
                           std::string name = p.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(TokenizerFixture, LlamaSpecialTokensAndConfig) {
  const Tokenizer tok = Tokenizer::load(test::data_path("tiny-llama"));
  EXPECT_EQ(tok.vocab_size(), 1024);
  EXPECT_EQ(tok.bos_token(), "<|begin_of_text|>");
  EXPECT_EQ(tok.eos_token(), "<|eot_id|>");
  EXPECT_EQ(tok.bos_token_id(), 0);
  EXPECT_EQ(tok.eos_token_id(), 4);
  EXPECT_EQ(tok.special_token_ids(), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(tok.is_special(4));
  EXPECT_FALSE(tok.is_special(5));
  EXPECT_EQ(tok.token_to_id("<|eot_id|>"), 4);
  EXPECT_EQ(tok.token_to_id("no such token"), std::nullopt);
  EXPECT_EQ(tok.id_to_token(100000), std::nullopt);
  EXPECT_EQ(tok.id_to_token(-1), std::nullopt);
  // Ids outside the vocabulary decode to nothing, as in tokenizers.
  std::vector<int32_t> ids = tok.encode("Hi", false);
  ids.insert(ids.begin() + 1, {5000, -3});
  EXPECT_EQ(tok.decode(ids), "Hi");
}

TEST(TokenizerFixture, QwenSpecialTokensAndConfig) {
  const Tokenizer tok = Tokenizer::load(test::data_path("tiny-qwen3"));
  EXPECT_EQ(tok.vocab_size(), 1024);
  EXPECT_EQ(tok.bos_token(), std::nullopt);
  EXPECT_EQ(tok.bos_token_id(), std::nullopt);
  EXPECT_EQ(tok.eos_token(), "<|im_end|>");
  EXPECT_EQ(tok.eos_token_id(), 2);
  EXPECT_EQ(tok.config().pad_token, "<|endoftext|>");
  EXPECT_EQ(tok.config().add_bos_token, false);
  EXPECT_EQ(tok.special_token_ids(), (std::vector<int32_t>{0, 1, 2}));
  // No post-processor template: nothing is added.
  EXPECT_EQ(tok.encode("Hello world"), tok.encode("Hello world", false));
}

}  // namespace
}  // namespace fp8llm
