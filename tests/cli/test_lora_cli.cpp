// --lora on the command line: one adapter for every request, named adapters picked by the
// prompts file's lora field, adapters in bench, and bad values as one-line errors before the
// load.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "../engine/lora_fixture.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

using nlohmann::json;

json tokens_of(const CliResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out)["tokens"];
}

TEST(LoraCli, AdaptersChangeWhatIsGeneratedAndTheFileNamesThem) {
  TempDir tmp;
  TinyAdapter{.rank = 8, .spread = 0.2f, .seed = 3}.write(tmp / "a");
  TinyAdapter{.rank = 8, .zero_b = true}.write(tmp / "zero");
  const std::string base_cmd = "generate --model " + data_path("tiny-llama").string() +
                               " -q fp8-row --max-tokens 6 --json --prompt-ids 0,384,950,902";
  const json base = tokens_of(run_cli(base_cmd));
  EXPECT_EQ(tokens_of(run_cli(base_cmd + " --lora " + (tmp / "zero").string())), base);
  EXPECT_NE(tokens_of(run_cli(base_cmd + " --lora " + (tmp / "a").string())), base);

  std::ofstream(tmp / "in.jsonl")
      << R"({"prompt_token_ids": [0, 384, 950, 902], "max_tokens": 6, "ignore_eos": true, "lora": "a"}
{"prompt_token_ids": [0, 384, 950, 902], "max_tokens": 6, "ignore_eos": true}
)";
  const CliResult r = run_cli("generate --model " + data_path("tiny-llama").string() +
                              " -q fp8-row --lora a=" + (tmp / "a").string() +
                              " --lora z=" + (tmp / "zero").string() + " --prompts-file " +
                              (tmp / "in.jsonl").string() + " --out -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(json::parse(first)["outputs"][0]["token_ids"],
            tokens_of(run_cli(base_cmd + " --lora " + (tmp / "a").string())));
  EXPECT_EQ(json::parse(second)["outputs"][0]["token_ids"], base);
}

TEST(LoraCli, BenchRunsTokensThroughTheAdapters) {
  TempDir tmp;
  TinyAdapter{.rank = 8, .seed = 3}.write(tmp / "a");
  TinyAdapter{.rank = 16, .seed = 4}.write(tmp / "b");
  const std::string model = " --model " + data_path("tiny-llama").string() + " -q fp8-row";
  const CliResult one = run_cli("bench" + model + " --prompt-tokens 8 --decode-tokens 4 --lora " +
                                (tmp / "a").string());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("decode "), std::string::npos) << one.out;
  const CliResult many =
      run_cli("bench" + model + " --concurrency 2 --num-prompts 4 --input-len 8 --output-len 4" +
              " --lora a=" + (tmp / "a").string() + " --lora b=" + (tmp / "b").string());
  ASSERT_EQ(many.exit_code, 0) << many.err;
  EXPECT_NE(many.out.find("lora       requests take the adapters in turn: a, b\n"),
            std::string::npos)
      << many.out;
  EXPECT_NE(many.out.find("throughput "), std::string::npos) << many.out;
}

TEST(LoraCli, BadValuesAreOneLineErrors) {
  TempDir tmp;
  TinyAdapter{.rank = 8}.write(tmp / "a");
  const std::string cmd =
      "generate --model " + data_path("tiny-llama").string() + " --max-tokens 2 --prompt-ids 1,2";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {" --lora " + (tmp / "missing").string(), "adapter_config.json"},
      {" --lora " + (tmp / "a").string() + " --lora " + (tmp / "a").string(), "each needs a name"},
      {" --lora =x", "expected DIR or NAME=DIR"},
  };
  for (const auto& [args, needle] : cases) {
    const CliResult r = run_cli(cmd + args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace fp8llm::test
