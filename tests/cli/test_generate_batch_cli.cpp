// `fp8llm generate --prompts-file IN.jsonl --out OUT.jsonl`: outputs in input order with n
// samples, text and log-probabilities; greedy tokens equal one-prompt generation; stop strings;
// bad lines are one-line errors naming the file, line and field, and leave no output file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace fp8llm::test {
namespace {

using nlohmann::json;

std::string llama() {
  return data_path("tiny-llama").string();
}

std::vector<json> lines_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(GenerateBatchCli, ResultsInInputOrderEqualOnePromptGeneration) {
  TempDir tmp;
  write(tmp / "in.jsonl",
        R"({"prompt_token_ids": [0, 384, 950, 902], "max_tokens": 7, "ignore_eos": true}
{"prompt": "The quick brown fox", "max_tokens": 5, "n": 3, "temperature": 0.9, "seed": 4, "logprobs": 2}

{"prompt_token_ids": [0, 17, 18], "max_tokens": 4, "ignore_eos": true, "logprobs": 0, "prompt_logprobs": 1}
)");
  const CliResult r =
      run_cli("generate --model " + llama() + " -q fp8-row --prompts-file " +
              (tmp / "in.jsonl").string() + " --out " + (tmp / "out.jsonl").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("3 requests"), std::string::npos) << r.err;
  const std::vector<json> out = lines_of(tmp / "out.jsonl");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]["prompt_token_ids"], json({0, 384, 950, 902}));
  EXPECT_EQ(out[2]["prompt_token_ids"], json({0, 17, 18}));
  ASSERT_EQ(out[1]["outputs"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const json& o = out[1]["outputs"][i];
    EXPECT_EQ(o["index"], i);
    ASSERT_EQ(o["logprobs"].size(), o["token_ids"].size());
    EXPECT_EQ(o["logprobs"][0]["top_logprobs"].size(), 2u);
    EXPECT_TRUE(o["text"].is_string());
  }
  EXPECT_TRUE(out[0]["outputs"][0]["logprobs"].is_null());
  EXPECT_EQ(out[2]["outputs"][0]["logprobs"].size(), 4u);
  EXPECT_FALSE(out[2]["outputs"][0]["logprobs"][0].contains("top_logprobs"));
  // The prompt's log-probabilities, as vLLM lists them: none for the first token.
  EXPECT_FALSE(out[0].contains("prompt_logprobs"));
  const json& scored = out[2]["prompt_logprobs"];
  ASSERT_EQ(scored.size(), 3u) << out[2];
  EXPECT_TRUE(scored[0].is_null());
  for (size_t p = 1; p < 3; ++p) {
    EXPECT_EQ(scored[p]["token_id"], out[2]["prompt_token_ids"][p]);
    EXPECT_LE(scored[p]["logprob"].get<double>(), 0.0);
    EXPECT_EQ(scored[p]["top_logprobs"].size(), 1u);
  }
  // The first line's greedy tokens are those of the one-prompt path.
  const CliResult one = run_cli("generate --model " + llama() +
                                " -q fp8-row --max-tokens 7 --json --prompt-ids 0,384,950,902");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(json::parse(one.out)["tokens"], out[0]["outputs"][0]["token_ids"]);
  EXPECT_EQ(out[0]["outputs"][0]["finish_reason"], "length");
}

TEST(GenerateBatchCli, StopStringsEndTheTextBeforeThem) {
  TempDir tmp;
  // What greedy decoding writes, then the same request stopping at a piece of that text.
  write(tmp / "a.jsonl", R"({"prompt": "Hello", "max_tokens": 12, "ignore_eos": true})");
  ASSERT_EQ(run_cli("generate --model " + llama() + " -q none --prompts-file " +
                    (tmp / "a.jsonl").string() + " --out " + (tmp / "a.out").string())
                .exit_code,
            0);
  const std::string text = lines_of(tmp / "a.out").at(0)["outputs"][0]["text"];
  // Two ASCII characters past the start (random weights write any bytes).
  size_t at = 2;
  while (at + 1 < text.size() && !(static_cast<unsigned char>(text[at]) < 0x80 &&
                                   static_cast<unsigned char>(text[at + 1]) < 0x80))
    ++at;
  ASSERT_LT(at + 1, text.size()) << text;
  const std::string stop = text.substr(at, 2);
  write(tmp / "b.jsonl",
        json{{"prompt", "Hello"}, {"max_tokens", 12}, {"ignore_eos", true}, {"stop", stop}}.dump());
  ASSERT_EQ(run_cli("generate --model " + llama() + " -q none --prompts-file " +
                    (tmp / "b.jsonl").string() + " --out " + (tmp / "b.out").string())
                .exit_code,
            0);
  const json o = lines_of(tmp / "b.out").at(0)["outputs"][0];
  EXPECT_EQ(o["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(o["finish_reason"], "stop");
  EXPECT_LT(o["token_ids"].size(), 12u);
  // vLLM's include_stop_str_in_output keeps the stop string.
  write(tmp / "c.jsonl", json{{"prompt", "Hello"},
                              {"max_tokens", 12},
                              {"ignore_eos", true},
                              {"stop", stop},
                              {"include_stop_str_in_output", true}}
                             .dump());
  ASSERT_EQ(run_cli("generate --model " + llama() + " -q none --prompts-file " +
                    (tmp / "c.jsonl").string() + " --out " + (tmp / "c.out").string())
                .exit_code,
            0);
  EXPECT_EQ(lines_of(tmp / "c.out").at(0)["outputs"][0]["text"],
            text.substr(0, text.find(stop) + stop.size()));
}

TEST(GenerateBatchCli, BadLinesAreOneLineErrorsAndWriteNothing) {
  TempDir tmp;
  const auto in = tmp / "in.jsonl";
  const auto out = tmp / "out.jsonl";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"prompt\": \"a\"}\nnot json\n", ":2: not valid JSON"},
      {"[1, 2]\n", ":1: expected a JSON object"},
      {"{\"prompt\": \"a\", \"top_p\": 1.5}", ":1: top_p must be in (0, 1]"},
      {"{\"prompt\": \"a\", \"n\": 0}", ":1: n: 0 is out of range"},
      {"{\"prompt\": \"a\", \"max_tokens\": -2}", ":1: max_tokens: -2 is out of range"},
      {"{\"prompt\": \"a\", \"logprobs\": 50}", ":1: logprobs: 50 is out of range"},
      {"{\"prompt\": \"a\", \"temprature\": 1}", ":1: temprature: not a request field"},
      {"{\"prompt_token_ids\": [1, 99999]}", ":1: prompt_token_ids: 99999 is not a token id"},
      {"{\"prompt\": \"a\", \"prompt_token_ids\": [1]}", ":1: give one of prompt"},
      {"{\"prompt\": 5}", ":1: prompt: expected a string"},
      {"{\"prompt\": \"a\", \"stop\": [1]}", ":1: stop: expected a string or a list of strings"},
      {"\n\n", "no requests in it"},
  };
  for (const auto& [text, needle] : cases) {
    write(in, text);
    const CliResult r = run_cli("generate --model " + llama() + " --prompts-file " + in.string() +
                                " --out " + out.string());
    EXPECT_EQ(r.exit_code, 2) << text;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << text;
  }
  const CliResult both =
      run_cli("generate --model " + llama() + " --prompt-ids 1,2 --prompts-file " + in.string());
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("give one of --prompt-ids and --prompts-file"), std::string::npos);
}

}  // namespace
}  // namespace fp8llm::test
