// Deeply nested JSON from a user's file: printing, copying or comparing such a value recurses
// once per level, so every reader checks the depth first (core/json_depth.h), without recursing.
// The command-line cases are files a million levels deep that used to crash fp8llm (stack
// overflow) when an error message printed them; now each is a one-line error with exit code 2.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

#include "core/error.h"
#include "core/json_depth.h"
#include "formats/hf_config.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

std::string nested(int depth, const std::string& inner = "1") {
  return std::string(static_cast<size_t>(depth), '[') + inner +
         std::string(static_cast<size_t>(depth), ']');
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(JsonDepth, CountsLevelsWithoutRecursing) {
  EXPECT_FALSE(json_nests_deeper_than(nlohmann::json::parse("1"), 0));
  EXPECT_FALSE(json_nests_deeper_than(nlohmann::json::parse("[1]"), 1));
  EXPECT_TRUE(json_nests_deeper_than(nlohmann::json::parse("[1]"), 0));
  EXPECT_FALSE(json_nests_deeper_than(nlohmann::json::parse(R"({"a": [{"b": 2}], "c": 3})"), 3));
  EXPECT_TRUE(json_nests_deeper_than(nlohmann::json::parse(R"({"a": [{"b": []}]})"), 3));
  // A million levels: parsed and checked without touching the stack's depth.
  const auto deep = nlohmann::ordered_json::parse(nested(1000000));
  EXPECT_TRUE(json_nests_deeper_than(deep, kMaxJsonDepth));
  const std::string message = error_of([&] { check_json_depth(deep, "deep.json"); });
  EXPECT_EQ(message, "deep.json: nests deeper than 128 levels");
}

TEST(JsonDepth, ConfigJsonIsAnError) {
  const std::string text = R"({"hidden_size": )" + nested(1000000) + "}";
  EXPECT_NE(error_of([&] {
              parse_model_config_text(text, "config.json");
            }).find("config.json: nests deeper than"),
            std::string::npos);
}

TEST(JsonDepth, PromptsFileAndChatJsonAreOneLineErrors) {
  TempDir tmp;
  write(tmp / "deep.jsonl", R"({"prompt_token_ids": )" + nested(1000000) + "}\n");
  const std::string model = data_path("tiny-llama").string();
  CliResult r = run_cli("generate --model " + model + " --prompts-file " +
                        (tmp / "deep.jsonl").string() + " --out " + (tmp / "out.jsonl").string());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("deep.jsonl:1: nests deeper than 128 levels"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "out.jsonl"));

  write(tmp / "chat.json", R"([{"role": "user", "content": )" + nested(1000000) + "}]");
  r = run_cli("tokenize --model " + model + " --chat-json " + (tmp / "chat.json").string());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("chat.json: nests deeper than 128 levels"), std::string::npos) << r.err;
}

TEST(JsonDepth, TokenizerAndGenerationConfigAreErrors) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp / "m");
  write(tmp / "m" / "generation_config.json", R"({"eos_token_id": )" + nested(1000000) + "}");
  CliResult r = run_cli("generate --model " + (tmp / "m").string() + " --prompt-ids 1,2");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("nests deeper than 128 levels"), std::string::npos) << r.err;

  copy_dir(data_path("tiny-llama"), tmp / "t");
  write(tmp / "t" / "tokenizer.json", R"({"model": )" + nested(1000000) + "}");
  r = run_cli("tokenize --model " + (tmp / "t").string() + " --text hi");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("nests deeper than 128 levels"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fp8llm::test
