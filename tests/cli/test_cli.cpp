// The `fp8llm` program end to end: results on stdout, one-line errors and exit code 2 for bad
// input, files written whole or not at all.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "formats/safetensors.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

std::string model(const std::string& name) {
  return data_path(name).string();
}

size_t count_lines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

TEST(Cli, InspectPrintsPlanAndErrors) {
  const CliResult r = run_cli("inspect " + model("tiny-llama") + " --quantization fp8-block");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture llama: 2 layers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model.layers.1.mlp.down_proj.weight"), std::string::npos);
  EXPECT_NE(r.out.find("14 of 21 tensors quantized"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("worst relative error"), std::string::npos);
}

TEST(Cli, GenerateGreedyMatchesReference) {
  std::ifstream in(data_path("tiny-llama/reference.json"));
  const auto ref = nlohmann::json::parse(in);
  std::string ids;
  for (int id : ref["prompts"][1]) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  const CliResult r = run_cli("generate --model " + model("tiny-llama") +
                              " --quantization none --max-tokens 24 --json --prompt-ids " + ids);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["tokens"], ref["greedy_continuation_of_prompt_1"]);
  EXPECT_EQ(out["finish_reason"], "length");
  EXPECT_EQ(out["logprobs"].size(), 24u);
}

// generate stops at the model's EOS tokens as run and chat do: generation_config.json's when it
// sets them, else config.json's.
TEST(Cli, GenerateStopsAtTheModelsEos) {
  std::ifstream in(data_path("tiny-llama/reference.json"));
  const auto ref = nlohmann::json::parse(in);
  std::string ids;
  for (int id : ref["prompts"][1]) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  const std::vector<int> continuation = ref["greedy_continuation_of_prompt_1"];
  TempDir tmp;
  const auto dir = tmp / "model";
  copy_dir(data_path("tiny-llama"), dir);
  const std::string args = "generate --model " + dir.string() +
                           " -q none --max-tokens 24 --json --quiet --prompt-ids " + ids;

  std::ofstream(dir / "generation_config.json")
      << "{\"eos_token_id\": [5, " << continuation[2] << "]}";
  CliResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["tokens"],
            nlohmann::json(std::vector<int>(continuation.begin(), continuation.begin() + 3)));
  EXPECT_EQ(out["finish_reason"], "stop");

  // Without generation_config.json, config.json's eos_token_id.
  std::filesystem::remove(dir / "generation_config.json");
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  config["eos_token_id"] = continuation[4];
  std::ofstream(dir / "config.json") << config.dump();
  r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["tokens"].size(), 5u) << out;
  EXPECT_EQ(out["finish_reason"], "stop");
}

TEST(Cli, LogitsOutMatchesReference) {
  TempDir tmp;
  const auto file = tmp / "logits.safetensors";
  std::ifstream in(data_path("tiny-qwen3/reference.json"));
  const int prompt0 = nlohmann::json::parse(in)["prompts"][0][0];
  const CliResult r = run_cli("generate --model " + model("tiny-qwen3") +
                              " -q fp8-row --max-tokens 1 --prompt-ids " + std::to_string(prompt0) +
                              " --logits-out " + file.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = SafetensorsFile::open(file);
  const auto ref = SafetensorsFile::open(data_path("tiny-qwen3/reference_logits.safetensors"));
  const TensorView g = got->view("logits"), w = ref->view("fp8_row.p0");
  ASSERT_EQ(g.shape, (Shape{1, 1024}));
  EXPECT_LT(rel_l2(g.as<float>(), w.as<float>(), 1024), 1e-4);
  // Nothing but the result is left in the directory (no temporary files).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp.path()),
                          std::filesystem::directory_iterator{}),
            1);
}

struct BadCall {
  std::string args;
  std::string message;
};

class CliErrors : public ::testing::TestWithParam<BadCall> {};

TEST_P(CliErrors, OneLineAndExitCode2) {
  const std::string args = GetParam().args;
  const CliResult r = run_cli(args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(GetParam().message), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

INSTANTIATE_TEST_SUITE_P(
    All, CliErrors,
    ::testing::Values(
        BadCall{"inspect /nonexistent/model", "/nonexistent/model"},
        BadCall{"inspect " + model("tiny-llama") + " --bogus", "--bogus"},
        BadCall{"inspect " + model("tiny-llama") + " -q int4", "int4"},
        BadCall{"generate --model " + model("tiny-llama") + " --prompt-ids 1,x",
                "'x' is not a token id"},
        BadCall{"generate --model " + model("tiny-llama") + " --prompt-ids 5000", "out of range"},
        BadCall{"generate --model " + model("tiny-llama") + " --prompt-ids 1 --device tpu", "tpu"},
        BadCall{"generate --model " + model("tiny-llama") + " --prompt-ids 1 --top-p 0", "top_p"},
        BadCall{"generate --model " + model("tiny-llama") + " --prompt-ids 1 --fp8-gemm fast",
                "--fp8-gemm"},
        BadCall{"frobnicate", "unknown command 'frobnicate'"}));

}  // namespace
}  // namespace fp8llm::test
