// --tensor-parallel on the command line: the reference greedy continuation from two and four
// ranks, and one-line errors (exit code 2) for rank counts the model does not divide by.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "test_util.h"

namespace fp8llm::test {
namespace {

std::string model(const std::string& name) {
  return data_path(name).string();
}

TEST(TensorParallelCli, GreedyContinuationFromSeveralRanks) {
  std::ifstream in(data_path("tiny-llama/reference.json"));
  const auto ref = nlohmann::json::parse(in);
  std::string ids;
  for (int id : ref["prompts"][1]) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  for (const int ranks : {2, 4}) {
    const CliResult r = run_cli("generate --model " + model("tiny-llama") +
                                " --quantization none --max-tokens 24 --json --prompt-ids " + ids +
                                " --tensor-parallel " + std::to_string(ranks));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["tokens"], ref["greedy_continuation_of_prompt_1"])
        << ranks << " ranks";
  }
}

TEST(TensorParallelCli, RankCountsThatDoNotDivideAreOneLineErrors) {
  const std::vector<std::pair<std::string, std::string>> calls = {
      {model("tiny-llama") + " --tensor-parallel 0", "--tensor-parallel 0 must be at least 1"},
      {model("tiny-llama") + " --tensor-parallel 8",
       "--tensor-parallel 8: more ranks than num_attention_heads (4)"},
      {model("tiny-qwen2") + " --tensor-parallel 2",
       "--tensor-parallel 2: num_attention_heads 3 is not a multiple of 2"},
  };
  for (const auto& [args, message] : calls) {
    const CliResult r = run_cli("generate --prompt-ids 1 --model " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
}  // namespace fp8llm::test
