// `fp8llm export`: the weights an engine holds, written as a model directory from the command
// line (stored FP8, or dequantized), and its one-line errors with exit code 2.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../engine/state_dict_expect.h"
#include "core/file_util.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {
namespace fs = std::filesystem;

std::string model(const std::string& name) {
  return data_path(name).string();
}

CliResult export_cli(const std::string& args) {
  return run_cli("export --registry " + data_path("no-registry.json").string() + " " + args);
}

TEST(ExportCli, StoredEqualsTheReferenceFp8Checkpoint) {
  TempDir tmp;
  const CliResult r = export_cli("--model " + model("tiny-qwen2") +
                                 " --quantization fp8-block --out " + (tmp / "out").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("exported " + model("tiny-qwen2") + " (fp8-block) to " +
                       (tmp / "out").string() + ": 60 tensors"),
            std::string::npos)
      << r.err;
  expect_same_tensors(tensors_of_dir(tmp / "out"),
                      tensors_of_file(data_path("tiny-qwen2/expected_fp8_block.safetensors")));
  const auto config = nlohmann::json::parse(read_text_file(tmp / "out" / "config.json"));
  EXPECT_EQ(config["quantization_config"]["quant_method"], "fp8");
}

TEST(ExportCli, DequantizedAndSharded) {
  TempDir tmp;
  const CliResult r =
      export_cli("--model " + model("tiny-llama") + " -q fp8-row --dequantize --quiet " +
                 "--max-shard-bytes 200000 --out " + (tmp / "out").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // --quiet
  EXPECT_TRUE(fs::exists(tmp / "out" / "model.safetensors.index.json"));
  expect_same_tensors(
      tensors_of_dir(tmp / "out"),
      dequantized(tensors_of_file(data_path("tiny-llama/expected_fp8_row.safetensors"))));
  const auto config = nlohmann::json::parse(read_text_file(tmp / "out" / "config.json"));
  EXPECT_FALSE(config.contains("quantization_config"));
}

TEST(ExportCli, PrequantizedCheckpointExportsItsBytes) {
  TempDir tmp;
  const CliResult r =
      export_cli("--model " + model("tiny-llama-fp8-block") + " --out " + (tmp / "out").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_tensors(tensors_of_dir(tmp / "out"),
                      tensors_of_file(data_path("tiny-llama-fp8-block/model.safetensors")));
}

// Each bad input: exit code 2, exactly one line on stderr, nothing written.
TEST(ExportCli, BadInputsAreOneLineErrors) {
  TempDir tmp;
  fs::create_directory(tmp / "exists");
  const std::string out = (tmp / "out").string();
  const std::string llama = "--model " + model("tiny-llama");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {llama + " --out " + (tmp / "exists").string(),
       "error: " + (tmp / "exists").string() + ": already exists (choose a new output directory)"},
      {llama + " --out " + (tmp / "no" / "out").string(),
       "error: " + (tmp / "no" / "out").string() + ": the parent directory does not exist"},
      {llama + " --quantization int4 --out " + out,
       "error: --quantization: 'int4' is not one of auto, none, fp8-row, fp8-block"},
      {llama + " --max-shard-bytes 0 --out " + out,
       "error: --max-shard-bytes must be positive (got 0)"},
      {llama, "error: --out is required (see --help)"},
      {llama + " --out " + out + " --dequantise",
       "error: The following argument was not expected: --dequantise (see --help)"},
      {"--model " + (tmp / "missing").string() + " --out " + out,
       "error: " + (tmp / "missing").string()},
  };
  for (const auto& [args, message] : cases) {
    const CliResult r = export_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_TRUE(r.err.starts_with(message)) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.path())) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{"exists"});
}

TEST(ExportCli, DeviceIsChecked) {
  TempDir tmp;
  const CliResult r = export_cli("--model " + model("tiny-llama") + " --device tpu --out " +
                                 (tmp / "out").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.err.starts_with("error: --device: 'tpu' is not one of cpu, cuda")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "out"));
}

}  // namespace
}  // namespace fp8llm::test
