// Small tokenizer.json files written by the tests: each supported option on its own, and an
// error naming the file and field for each unsupported one.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

#include "core/error.h"
#include "test_util.h"
#include "text/byte_level.h"
#include "text/stream_decoder.h"
#include "text/tokenizer.h"

namespace fp8llm {
namespace {

using nlohmann::json;

// `raw` written in the byte-level alphabet.
std::string bl(std::string_view raw) {
  std::string s;
  append_byte_level(s, raw);
  return s;
}

// A byte-level BPE tokenizer: the 256 byte tokens (id = byte value), then one token per merge
// (merges given in raw bytes), then `extra` tokens.
json byte_level_tokenizer(const std::vector<std::pair<std::string, std::string>>& merges,
                          const std::vector<std::string>& extra = {}) {
  json vocab = json::object(), merge_list = json::array();
  for (int b = 0; b < 256; ++b) vocab[bl(std::string(1, static_cast<char>(b)))] = b;
  int next = 256;
  const auto add = [&](const std::string& token) {
    if (!vocab.contains(token)) vocab[token] = next++;
  };
  for (const auto& [a, b] : merges) {
    add(bl(a + b));
    merge_list.push_back(bl(a) + " " + bl(b));
  }
  for (const auto& t : extra) add(bl(t));
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "ByteLevel"},
            {"add_prefix_space", false},
            {"trim_offsets", true},
            {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", merge_list}}}};
}

Tokenizer make(const json& j) {
  return Tokenizer::from_json(j.dump(), "tokenizer.json");
}

int32_t id(const Tokenizer& t, std::string_view raw) {
  const auto i = t.token_to_id(bl(raw));
  EXPECT_TRUE(i.has_value()) << raw;
  return i.value_or(-1);
}

json added(int id, const std::string& content, bool special = true) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", special}};
}

using Ids = std::vector<int32_t>;

TEST(BpeMerges, LowestRankFirstThenLeftmost) {
  const Tokenizer t = make(byte_level_tokenizer({{"a", "a"}, {"aa", "a"}}));
  EXPECT_EQ(t.encode("aaa"), (Ids{id(t, "aaa")}));
  EXPECT_EQ(t.encode("aaaa"), (Ids{id(t, "aa"), id(t, "aa")}));
  const Tokenizer left = make(byte_level_tokenizer({{"a", "a"}}));
  EXPECT_EQ(left.encode("aaa"), (Ids{id(left, "aa"), 'a'}));

  const Tokenizer bc_first = make(byte_level_tokenizer({{"b", "c"}, {"a", "b"}}));
  EXPECT_EQ(bc_first.encode("abc"), (Ids{'a', id(bc_first, "bc")}));
  const Tokenizer ab_first = make(byte_level_tokenizer({{"a", "b"}, {"b", "c"}}));
  EXPECT_EQ(ab_first.encode("abc"), (Ids{id(ab_first, "ab"), 'c'}));
}

TEST(BpeMerges, PairFormEqualsStringForm) {
  json j = byte_level_tokenizer({{"h", "e"}, {"l", "l"}, {"he", "ll"}, {" ", "w"}});
  const Tokenizer strings = make(j);
  json pairs = json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m;
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  j["model"]["merges"] = pairs;
  const Tokenizer pair_form = make(j);
  EXPECT_EQ(strings.encode("hello world"), pair_form.encode("hello world"));
  EXPECT_EQ(strings.encode("hello world"),
            (Ids{id(strings, "hell"), 'o', id(strings, " w"), 'o', 'r', 'l', 'd'}));
}

TEST(BpeMerges, IgnoreMergesTakesWholePiecesFromTheVocabulary) {
  json j = byte_level_tokenizer({{"a", "b"}}, {"abc"});
  EXPECT_EQ(make(j).encode("abc"), (Ids{256, 'c'}));
  j["model"]["ignore_merges"] = true;
  const Tokenizer t = make(j);
  EXPECT_EQ(t.encode("abc"), (Ids{id(t, "abc")}));
  EXPECT_EQ(t.encode("abcd"), (Ids{id(t, "ab"), 'c', 'd'}));
}

TEST(PreTokenizer, ByteLevelPrefixSpaceAndGpt2Regex) {
  json j = byte_level_tokenizer({});
  j["pre_tokenizer"]["add_prefix_space"] = true;
  const Tokenizer t = make(j);
  // " Hi" then " you": GPT-2's regex keeps a leading space with each word.
  EXPECT_EQ(t.encode("Hi you"), (Ids{' ', 'H', 'i', ' ', 'y', 'o', 'u'}));
  EXPECT_EQ(t.encode(" Hi"), (Ids{' ', 'H', 'i'}));
}

TEST(PreTokenizer, SplitStringPatternRemoved) {
  json j = byte_level_tokenizer({{"a", "b"}});
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern", {{"String", "-"}}},
         {"behavior", "Removed"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  const Tokenizer t = make(j);
  EXPECT_EQ(t.encode("ab-ab--a"), (Ids{256, 256, 'a'}));
}

TEST(PreTokenizer, ByteLevelBeforeSplitMapsBytesFirst) {
  // With ByteLevel first, a Split sees the byte-level alphabet: "Ġ" instead of a space.
  json j = byte_level_tokenizer({{" ", "a"}});
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}},
        {{"type", "Split"},
         {"pattern", {{"String", bl(" ")}}},
         {"behavior", "MergedWithNext"},
         {"invert", false}}}}};
  const Tokenizer t = make(j);
  EXPECT_EQ(t.encode("b a a"), (Ids{'b', id(t, " a"), id(t, " a")}));
  EXPECT_EQ(t.decode(t.encode("b a a")), "b a a");
}

TEST(Normalizer, NfcMakesDecomposedTextEncodeLikeComposed) {
  json j = byte_level_tokenizer({});
  const std::string composed = "caf\u00e9", decomposed = "cafe\u0301";
  EXPECT_NE(make(j).encode(composed), make(j).encode(decomposed));
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
  const Tokenizer t = make(j);
  EXPECT_EQ(t.encode(decomposed), t.encode(composed));
  EXPECT_EQ(t.decode(t.encode(decomposed)), composed);
}

TEST(AddedTokens, LongestMatchFirstAndSpecialSkipping) {
  json j = byte_level_tokenizer({});
  j["added_tokens"] = {added(300, "<x>"), added(301, "<xy>"), added(302, "<plain>", false)};
  const Tokenizer t = make(j);
  EXPECT_EQ(t.encode("a<xy>b<x>"), (Ids{'a', 301, 'b', 300}));
  EXPECT_EQ(t.encode("<plain><x"), (Ids{302, '<', 'x'}));
  EXPECT_EQ(t.vocab_size(), 303);
  EXPECT_EQ(t.decode(Ids{'a', 301, 302}), "a<xy><plain>");
  EXPECT_EQ(t.decode(Ids{'a', 301, 302}, true), "a<plain>");
  EXPECT_EQ(t.special_token_ids(), (Ids{300, 301}));
}

TEST(AddedTokens, LstripRstripAndSingleWord) {
  json j = byte_level_tokenizer({});
  json l = added(300, "<l>"), r = added(301, "<r>"), w = added(302, "cat", false);
  l["lstrip"] = true;
  r["rstrip"] = true;
  w["single_word"] = true;
  j["added_tokens"] = {l, r, w};
  const Tokenizer t = make(j);
  EXPECT_EQ(t.encode("a \t<l> b"), (Ids{'a', 300, ' ', 'b'}));
  EXPECT_EQ(t.encode("a <r> \n b"), (Ids{'a', ' ', 301, 'b'}));
  EXPECT_EQ(t.encode("cat"), (Ids{302}));
  EXPECT_EQ(t.encode("a cat."), (Ids{'a', ' ', 302, '.'}));
  EXPECT_EQ(t.encode("concat"), (Ids{'c', 'o', 'n', 'c', 'a', 't'}));
  EXPECT_EQ(t.encode("cats"), (Ids{'c', 'a', 't', 's'}));
  EXPECT_EQ(t.encode("\u00e9cat"), (Ids{0xC3, 0xA9, 'c', 'a', 't'}));
}

TEST(AddedTokens, NormalizedTokensMatchNormalizedText) {
  json j = byte_level_tokenizer({});
  j["normalizer"] = {{"type", "NFC"}};
  json n = added(300, "e\u0301!", false);
  n["normalized"] = true;
  j["added_tokens"] = {n, added(301, "e\u0301?")};
  const Tokenizer t = make(j);
  // The normalized token is found in the composed form; the raw one only as written.
  EXPECT_EQ(t.encode("\u00e9!"), (Ids{300}));
  EXPECT_EQ(t.encode("e\u0301!"), (Ids{300}));
  EXPECT_EQ(t.encode("e\u0301?"), (Ids{301}));
  EXPECT_EQ(t.encode("\u00e9?"), (Ids{0xC3, 0xA9, '?'}));
}

TEST(AddedTokens, ContentOutsideTheByteAlphabetDecodesAsWritten) {
  json j = byte_level_tokenizer({});
  j["added_tokens"] = {added(300, "<a b>", false)};
  const Tokenizer t = make(j);
  EXPECT_EQ(t.encode("x<a b>"), (Ids{'x', 300}));
  EXPECT_EQ(t.decode(Ids{'x', 300}), "x<a b>");
}

TEST(PostProcessor, TemplateAroundTheSequence) {
  json j = byte_level_tokenizer({});
  j["added_tokens"] = {added(300, "<s>"), added(301, "</s>")};
  const json tmpl = {{"type", "TemplateProcessing"},
                     {"single",
                      {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                       {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}}},
                     {"pair", json::array()},
                     {"special_tokens",
                      {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}},
                       {"</s>", {{"id", "</s>"}, {"ids", {301}}, {"tokens", {"</s>"}}}}}}};
  j["post_processor"] = {{"type", "Sequence"},
                         {"processors", {{{"type", "ByteLevel"}, {"trim_offsets", false}}, tmpl}}};
  const Tokenizer t = make(j);
  EXPECT_EQ(t.encode("hi"), (Ids{300, 'h', 'i', 301}));
  EXPECT_EQ(t.encode("hi", false), (Ids{'h', 'i'}));
  EXPECT_EQ(t.encode(""), (Ids{300, 301}));
  EXPECT_EQ(t.decode(t.encode("hi"), true), "hi");
}

// A character-level BPE (no ByteLevel step): unknown characters, byte fallback.
json char_level_tokenizer() {
  json j = byte_level_tokenizer({});
  j["pre_tokenizer"] = nullptr;
  j["model"]["vocab"] = {{"a", 0}, {"b", 1}, {"ab", 2}, {"<unk>", 3}, {"<0x7A>", 4}, {"<0xC3>", 5}};
  j["model"]["merges"] = {"a b"};
  return j;
}

TEST(BpeUnknown, UnknownCharactersBecomeUnkAndFuse) {
  json j = char_level_tokenizer();
  EXPECT_EQ(make(j).encode("abxyab"), (Ids{2, 2}));  // no unk_token: dropped
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(make(j).encode("abxya"), (Ids{2, 3, 3, 0}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(make(j).encode("abxya"), (Ids{2, 3, 0}));
}

TEST(BpeUnknown, ByteFallbackUsesByteTokensWhenAllExist) {
  json j = char_level_tokenizer();
  j["model"]["unk_token"] = "<unk>";
  j["model"]["byte_fallback"] = true;
  // 'z' has <0x7A>; 'é' (C3 A9) lacks <0xA9>, so it is unknown.
  EXPECT_EQ(make(j).encode("az\u00e9b"), (Ids{0, 4, 3, 1}));
}

TEST(StreamDecoder, HoldsSplitCharactersUntilComplete) {
  const Tokenizer t = make(byte_level_tokenizer({}));
  // Byte tokens split every multi-byte character.
  const std::string text = "a\U0001F44D\u4F60\u00e9!";
  StreamDecoder s(t);
  std::vector<std::string> pieces;
  for (const char c : text) pieces.push_back(s.put(static_cast<uint8_t>(c)));
  EXPECT_EQ(pieces, (std::vector<std::string>{"a", "", "", "", "\U0001F44D", "", "", "\u4F60", "",
                                              "\u00e9", "!"}));
  EXPECT_EQ(s.flush(), "");
}

TEST(StreamDecoder, InvalidBytesBecomeReplacementCharactersLikeDecode) {
  const Tokenizer t = make(byte_level_tokenizer({}));
  const std::vector<Ids> cases = {
      {0xF0, 0x9F, 'a'},        // a cut-off emoji followed by ASCII
      {0xE4, 0xBD},             // ends mid-character: flush replaces it
      {0x80, 0xFF, 'x', 0xC3},  // stray continuation and invalid bytes
      {0xED, 0xA0, 0x80},       // an encoded surrogate
  };
  for (const Ids& ids : cases) {
    StreamDecoder s(t);
    std::string out;
    for (const int32_t i : ids) out += s.put(i);
    out += s.flush();
    EXPECT_EQ(out, t.decode(ids));
  }
  StreamDecoder s(t);
  EXPECT_EQ(s.put(0xF0), "");
  EXPECT_EQ(s.put(0x9F), "");
  EXPECT_EQ(s.pending_bytes(), 2u);
  EXPECT_EQ(s.put('a'), "\uFFFDa");
  EXPECT_EQ(s.put(0xE4), "");
  EXPECT_EQ(s.flush(), "\uFFFD");
}

TEST(StreamDecoder, EmojiAndCjkFromTheFixturesByteByByte) {
  const Tokenizer t = Tokenizer::load(test::data_path("tiny-qwen3"));
  for (const std::string text : {"\U0001F44D\U0001F3FD emoji \U0001F389\U0001F389 family "
                                 "\U0001F468\u200D\U0001F469\u200D\U0001F467",
                                 "\u4F60\u597D\uFF0C\u4E16\u754C\uFF01",
                                 "\u65E5\u672C\u8A9E\u306E\u30C6\u30AD\u30B9\u30C8"}) {
    StreamDecoder s(t);
    std::string out;
    size_t held = 0;
    for (const char c : text) {
      const std::string piece = s.put(*t.token_to_id(bl(std::string(1, c))));
      if (piece.empty()) ++held;
      out += piece;
    }
    EXPECT_GT(held, 0u);
    EXPECT_EQ(out + s.flush(), text);
  }
}

TEST(TokenizerThreads, ConcurrentEncodingGivesTheSameIds) {
  const Tokenizer t = Tokenizer::load(test::data_path("tiny-llama"));
  std::string text;
  for (int i = 0; i < 200; ++i) text += "The quick brown fox " + std::to_string(i * 7919) + "\n";
  const Ids expected = t.encode(text);
  t.clear_cache();
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back([&] { r = t.encode(text); });
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r, expected);
}

TEST(TokenizerJson, OptionalPartsMayBeLeftOut) {
  json j = byte_level_tokenizer({{"a", "b"}});
  const Ids with_all = make(j).encode("ab ab");
  // Old files without model.type are read by their fields, as tokenizers does.
  j["model"].erase("type");
  for (const char* key : {"normalizer", "post_processor", "added_tokens", "truncation"})
    j.erase(key);
  EXPECT_EQ(make(j).encode("ab ab"), with_all);
  j.erase("pre_tokenizer");
  // Without a pre-tokenizer the text is one piece, in the model's character alphabet.
  EXPECT_EQ(make(j).encode("ab"), (Ids{256}));
  j.erase("decoder");
  try {
    make(j);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "tokenizer.json: decoder: null is not supported (supported: ByteLevel)");
  }
}

TEST(TokenizerInput, InvalidUtf8IsAnError) {
  const Tokenizer t = make(byte_level_tokenizer({}));
  try {
    t.encode("ok\xC3(");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "tokenizer input: the text is not valid UTF-8 (byte 2 of 4)");
  }
}

// ---- errors ----

// Writes `j` as <dir>/tokenizer.json and loads the directory, expecting an error that contains
// `<dir>/tokenizer.json: ` followed by `message`.
void expect_load_error(const json& j, const std::string& message) {
  test::TempDir dir;
  std::ofstream(dir / "tokenizer.json") << j.dump();
  try {
    Tokenizer::load(dir.path());
    ADD_FAILURE() << "no error for: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "tokenizer.json").string() + ": " + message);
  }
}

TEST(TokenizerErrors, UnsupportedModelTypes) {
  for (const std::string type : {"Unigram", "WordPiece", "WordLevel"}) {
    json j = byte_level_tokenizer({});
    j["model"] = {{"type", type}, {"vocab", json::array()}};
    expect_load_error(j, "model.type: '" + type + "' is not supported (supported: BPE)");
  }
}

TEST(TokenizerErrors, UnsupportedNormalizerPreTokenizerDecoderPostProcessor) {
  json j = byte_level_tokenizer({});
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFKC"}}}}};
  expect_load_error(j,
                    "normalizer.normalizers[0].type: 'NFKC' is not supported (supported: NFC, "
                    "Sequence)");

  j = byte_level_tokenizer({});
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "_"}};
  expect_load_error(
      j,
      "pre_tokenizer.type: 'Metaspace' is not supported (supported: Sequence, Split, ByteLevel)");

  j = byte_level_tokenizer({});
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}};
  expect_load_error(j,
                    "pre_tokenizer.behavior: 'Sideways' is not supported (supported: Removed, "
                    "Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");

  j = byte_level_tokenizer({});
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Glob", "*"}}}, {"behavior", "Removed"}};
  expect_load_error(j, "pre_tokenizer.pattern: must have a 'Regex' or 'String' member");

  j = byte_level_tokenizer({});
  j["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}};
  expect_load_error(j, "decoder.type: 'WordPiece' is not supported (supported: ByteLevel)");
  j["decoder"] = nullptr;
  expect_load_error(j, "decoder: null is not supported (supported: ByteLevel)");

  j = byte_level_tokenizer({});
  j["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_load_error(j,
                    "post_processor.type: 'RobertaProcessing' is not supported (supported: "
                    "TemplateProcessing, ByteLevel, Sequence)");
}

TEST(TokenizerErrors, BadRegex) {
  json j = byte_level_tokenizer({});
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}}}}};
  try {
    make(j);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("tokenizer.json: pre_tokenizer.pretokenizers[0].pattern"
                                          ".Regex: cannot compile regex '(unclosed': ",
                                          0),
              0u)
        << e.what();
  }
}

TEST(TokenizerErrors, BadModelContents) {
  json j = byte_level_tokenizer({{"a", "b"}});
  j["model"]["merges"] = {bl("a") + " " + bl("q") + "q"};
  expect_load_error(j, "model.merges[0]: merges 'a' and 'qq' but 'qq' is not in model.vocab");
  j["model"]["merges"] = {"a b c"};
  expect_load_error(j, "model.merges[0]: must be two tokens separated by one space, not 'a b c'");
  j["model"]["merges"] = {42};
  expect_load_error(j, "model.merges[0]: must be a string \"a b\" or a pair [\"a\", \"b\"]");

  j = byte_level_tokenizer({});
  j["model"]["dropout"] = 0.1;
  expect_load_error(j,
                    "model.dropout: 0.1 is not supported (BPE dropout is for training; "
                    "supported: null or 0)");
  j = byte_level_tokenizer({});
  j["model"]["continuing_subword_prefix"] = "##";
  expect_load_error(j,
                    "model.continuing_subword_prefix: '##' is not supported (supported: null, "
                    "for byte-level BPE)");
  j = byte_level_tokenizer({});
  j["model"]["unk_token"] = "<unk>";
  expect_load_error(j, "model.unk_token: '<unk>' is not in model.vocab");
  j = byte_level_tokenizer({});
  j["model"]["vocab"]["x"] = -5;
  expect_load_error(j, "model.vocab.x: must be a non-negative 32-bit id, not -5");
  // A few tokens with huge ids: refused before tables indexed by id take gigabytes.
  j = byte_level_tokenizer({});
  j["model"]["vocab"]["x"] = 27777792;
  const auto entries = static_cast<int64_t>(j["model"]["vocab"].size());
  expect_load_error(j, "model.vocab.x: id 27777792 in a vocabulary of " + std::to_string(entries) +
                           " tokens (ids must be below " + std::to_string(2 * entries + 1024) +
                           ")");
  j = byte_level_tokenizer({});
  int64_t ids = 0;
  for (const auto& [token, id] : j["model"]["vocab"].items())
    ids = std::max(ids, id.get<int64_t>() + 1);
  j["added_tokens"] = {{{"id", 5000000}, {"content", "<big>"}, {"special", true}}};
  expect_load_error(j, "added token '<big>' has id 5000000 in a vocabulary of " +
                           std::to_string(ids + 1) + " tokens (ids must be below " +
                           std::to_string(2 * (ids + 1) + 1024) + ")");
  j = byte_level_tokenizer({});
  j["model"].erase("vocab");
  expect_load_error(j, "model.vocab: missing");
  j = byte_level_tokenizer({});
  j.erase("model");
  expect_load_error(j, "model: missing");
}

TEST(TokenizerErrors, BadAddedTokensAndTemplates) {
  json j = byte_level_tokenizer({});
  j["added_tokens"] = {{{"id", 300}, {"special", true}}};
  expect_load_error(j, "added_tokens[0].content: missing");
  j["added_tokens"] = {{{"id", "300"}, {"content", "<s>"}}};
  expect_load_error(j, "added_tokens[0].id: expected an integer, got \"300\"");

  j = byte_level_tokenizer({});
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single",
                          {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                           {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                         {"special_tokens", json::object()}};
  expect_load_error(j,
                    "post_processor.single[0].SpecialToken: names '<bos>', which is not in "
                    "post_processor.special_tokens");
  j["post_processor"]["single"] = {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}}};
  j["post_processor"]["special_tokens"] = {{"<bos>", {{"id", "<bos>"}, {"ids", {1}}}}};
  expect_load_error(j, "post_processor.single: has no Sequence piece");
}

TEST(TokenizerErrors, FilesAndJson) {
  test::TempDir dir;
  try {
    Tokenizer::load(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              (dir / "tokenizer.json").string() + ": not found (the tokenizer is needed)");
  }
  std::ofstream(dir / "tokenizer.json") << "{\"model\": ";
  try {
    Tokenizer::load(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(
        std::string(e.what()).rfind((dir / "tokenizer.json").string() + ": invalid JSON: ", 0), 0u)
        << e.what();
  }
  std::ofstream(dir / "tokenizer.json") << byte_level_tokenizer({}).dump();
  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": 7})";
  try {
    Tokenizer::load(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              (dir / "tokenizer_config.json").string() + ": bos_token: expected a string, got 7");
  }
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": {"__type": "AddedToken", "content": "a"}, "eos_token": "b",
             "add_bos_token": true})";
  const Tokenizer t = Tokenizer::load(dir.path());
  EXPECT_EQ(t.bos_token(), "a");
  EXPECT_EQ(t.bos_token_id(), 'a');
  EXPECT_EQ(t.eos_token_id(), 'b');
  EXPECT_EQ(t.config().add_bos_token, true);
}

}  // namespace
}  // namespace fp8llm
