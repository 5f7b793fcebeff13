// `--quantization-config JSON|@file` end to end: a torchao config (as vLLM users pass it) loads
// exactly as the --quantization mode it names; a config the engine cannot honour, a disagreeing
// --quantization or an unreadable file is one line on stderr and exit code 2.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "formats/safetensors.h"
#include "test_util.h"
#include "torchao_config.h"

namespace fp8llm::test {
namespace {

// The PerBlock config wrapped as vLLM's hf_overrides.
std::string per_block_overrides() {
  return as_vllm_hf_overrides(torchao_per_block()).dump(2);
}

std::string quoted(const std::string& json) {
  return "'" + json + "'";
}

std::string prompt_ids() {
  std::ifstream in(data_path("tiny-llama/reference.json"));
  const nlohmann::json ref = nlohmann::json::parse(in);
  std::string ids;
  for (int id : ref["prompts"][1]) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  return ids;
}

struct Generated {
  int exit_code = -1;
  std::string tokens;  // the --json result line
  std::vector<float> logits;
  std::string err;
};

Generated generate(const std::string& flags) {
  TempDir tmp;
  const auto file = tmp / "logits.safetensors";
  const CliResult r = run_cli("generate --model " + data_path("tiny-llama").string() +
                              " --max-tokens 12 --json --prompt-ids " + prompt_ids() +
                              " --logits-out " + file.string() + " " + flags);
  Generated g{r.exit_code, r.out, {}, r.err};
  if (r.exit_code == 0) {
    const auto st = SafetensorsFile::open(file);
    const TensorView v = st->view("logits");
    g.logits.assign(v.as<float>(), v.as<float>() + v.nbytes / sizeof(float));
  }
  return g;
}

void expect_same(const Generated& got, const Generated& want) {
  ASSERT_EQ(got.exit_code, 0) << got.err;
  ASSERT_EQ(want.exit_code, 0) << want.err;
  EXPECT_EQ(got.tokens, want.tokens);
  ASSERT_EQ(got.logits.size(), want.logits.size());
  EXPECT_EQ(std::memcmp(got.logits.data(), want.logits.data(), got.logits.size() * sizeof(float)),
            0)
      << "logits differ";
}

TEST(QuantizationConfigCli, TorchaoPerRowRunsExactlyAsFp8Row) {
  const Generated row = generate("--quantization fp8-row");
  const Generated config = generate("--quantization-config " + quoted(kTorchaoPerRow));
  expect_same(config, row);
  EXPECT_NE(config.err.find("quantizing to fp8-row on the fly"), std::string::npos) << config.err;
  // Giving the same mode both ways is fine.
  expect_same(generate("-q fp8-row --quantization-config " + quoted(kTorchaoPerRow)), row);
  // And the config did choose: fp8-block (the default) computes other logits.
  const Generated block = generate("");
  ASSERT_EQ(block.exit_code, 0) << block.err;
  EXPECT_GT(rel_l2(config.logits, block.logits), 1e-3);
}

TEST(QuantizationConfigCli, TorchaoPerBlockFromAFileRunsExactlyAsFp8Block) {
  TempDir tmp;
  const auto file = tmp / "torchao.json";
  std::ofstream(file) << per_block_overrides();
  const Generated config = generate("-q auto --quantization-config @" + file.string());
  expect_same(config, generate("--quantization fp8-block"));
  EXPECT_NE(config.err.find("quantizing to fp8-block on the fly"), std::string::npos) << config.err;
}

struct BadCall {
  std::string name;
  std::string flags;
  std::string message;  // the whole stderr line
};

class QuantizationConfigCliErrors : public ::testing::TestWithParam<BadCall> {};

TEST_P(QuantizationConfigCliErrors, OneLineAndExitCode2) {
  const CliResult r = run_cli("generate --model " + data_path("tiny-llama").string() +
                              " --prompt-ids 1,2 " + GetParam().flags);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, GetParam().message + "\n");
  EXPECT_EQ(r.out, "");
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  s.replace(s.find(from), from.size(), to);
  return s;
}

// A file written once for the whole test program (the error names it).
std::string bad_file() {
  static const std::filesystem::path path = [] {
    static TempDir dir;
    const auto p = dir / "e5m2.json";
    std::ofstream(p) << replaced(
        kTorchaoPerRow, R"("weight_dtype": {"_type": "torch.dtype", "_data": "float8_e4m3fn"})",
        R"("weight_dtype": {"_type": "torch.dtype", "_data": "float8_e5m2"})");
    return p;
  }();
  return path.string();
}

INSTANTIATE_TEST_SUITE_P(
    All, QuantizationConfigCliErrors,
    ::testing::Values(
        BadCall{"PerTensor",
                "--quantization-config " +
                    quoted(replaced(kTorchaoPerRow,
                                    R"("_type": "PerRow", "_version": 1, "_data": {"dim": -1}})",
                                    R"("_type": "PerTensor", "_version": 1, "_data": {}})")),
                "error: quantization-config: _data.granularity[0]: PerTensor is not supported "
                "(use PerRow or PerBlock)"},
        BadCall{"BadFile", "--quantization-config @" + bad_file(),
                "error: " + bad_file() +
                    ": _data.weight_dtype: float8_e5m2 is not supported (only float8_e4m3fn)"},
        BadCall{"Disagree", "-q fp8-block --quantization-config " + quoted(kTorchaoPerRow),
                "error: --quantization fp8-block and --quantization-config (torchao "
                "Float8DynamicActivationFloat8WeightConfig, granularity [PerRow, PerRow], i.e. "
                "fp8-row) disagree; give one of them, or the same mode in both"},
        BadCall{"MissingFile", "--quantization-config @/nonexistent/torchao.json",
                "error: --quantization-config @/nonexistent/torchao.json: "
                "/nonexistent/torchao.json: cannot open: No such file or directory"},
        BadCall{"Directory", "--quantization-config @" + data_path("tiny-llama").string(),
                "error: --quantization-config @" + data_path("tiny-llama").string() + ": " +
                    data_path("tiny-llama").string() + ": is a directory, not a regular file"},
        BadCall{"NoFileName", "--quantization-config @",
                "error: --quantization-config @: expected a file name after the @"},
        BadCall{"OtherMethod", "--quantization-config " + quoted(R"({"quant_method": "awq"})"),
                "error: quantization-config: quant_method: \"awq\" is not supported (torchao, fp8 "
                "or compressed-tensors FP8 configs are read)"}),
    [](const auto& p) { return p.param.name; });

TEST(QuantizationConfigCli, NotJsonIsOneLine) {
  const CliResult r = run_cli("generate --model " + data_path("tiny-llama").string() +
                              " --prompt-ids 1 --quantization-config " + quoted("{granularity"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("error: quantization-config: not valid JSON (", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace fp8llm::test
