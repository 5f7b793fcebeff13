// Every subcommand that reads a checkpoint's numbers applies one rule (loader/value_checks.h): a
// NaN or infinity in any weight, a NaN code in FP8 weights, or a scale that is not finite and
// positive is a one-line error naming the tensor. (run, generate and inspect used to accept some
// of them and generate token 0 with null log-probabilities.)
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "formats/safetensors.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

namespace fs = std::filesystem;

// A copy of fixture `model` in `dir` with `bytes` written at byte `offset` of tensor `name`.
void poisoned_copy(const std::string& model, const fs::path& dir, const std::string& name,
                   size_t offset, const std::vector<uint8_t>& bytes) {
  copy_dir(data_path(model), dir);
  std::vector<std::pair<std::string, TensorView>> tensors;
  std::vector<std::byte> poisoned;
  {
    const auto file = SafetensorsFile::open(dir / "model.safetensors");
    for (const auto& t : file->tensors()) tensors.emplace_back(t.name, file->view(t));
    for (auto& [tensor, view] : tensors) {
      if (tensor != name) continue;
      poisoned.assign(view.data, view.data + view.nbytes);
      std::memcpy(poisoned.data() + offset, bytes.data(), bytes.size());
      view.data = poisoned.data();
    }
    ASSERT_FALSE(poisoned.empty()) << name;
    write_safetensors(dir / "rewritten", tensors);
  }
  fs::rename(dir / "rewritten", dir / "model.safetensors");
}

struct Case {
  std::string name;
  std::string model;
  std::string tensor;
  size_t offset;
  std::vector<uint8_t> bytes;
  std::string error;  // after "error: <tensor>: "
};

class BadValuesCli : public ::testing::TestWithParam<Case> {};

TEST_P(BadValuesCli, EverySubcommandRefuses) {
  const Case& c = GetParam();
  TempDir tmp;
  const fs::path dir = tmp / "model";
  poisoned_copy(c.model, dir, c.tensor, c.offset, c.bytes);
  const std::string m = dir.string();
  const std::string want = "error: " + c.tensor + ": " + c.error + "\n";
  for (const std::string& args :
       {"generate --model " + m + " --prompt-ids 1,2 --max-tokens 2 --quiet",
        "generate --model " + m + " -q none --prompt-ids 1,2 --max-tokens 2 --quiet",
        "run --model " + m + " -q fp8-row --prompt hi --max-tokens 2 --quiet", "inspect " + m,
        "inspect " + m + " -q none",
        "export --model " + m + " --quiet --out " + (tmp / "exported").string()}) {
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    const size_t at = r.err.find("error: ");
    ASSERT_NE(at, std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(r.err.substr(at), want) << args;
    EXPECT_FALSE(fs::exists(tmp / "exported")) << args;
  }
}

std::vector<uint8_t> f32(float v) {
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

INSTANTIATE_TEST_SUITE_P(
    All, BadValuesCli,
    ::testing::Values(Case{"NaNInEmbedding",
                           "tiny-llama",
                           "model.embed_tokens.weight",
                           2,
                           {0xC0, 0x7F},
                           "contains NaN at [0, 1]"},
                      Case{"InfInLmHead",
                           "tiny-llama",
                           "lm_head.weight",
                           0,
                           {0x80, 0x7F},
                           "contains Inf at [0, 0]"},
                      Case{"NaNInNorm",
                           "tiny-llama",
                           "model.layers.0.input_layernorm.weight",
                           0,
                           {0xC0, 0x7F},
                           "contains NaN at [0]"},
                      Case{"NaNCode",
                           "tiny-llama-fp8-block",
                           "model.layers.0.mlp.up_proj.weight",
                           7,
                           {0x7F},
                           "contains the F8_E4M3 NaN code 0x7f at [0, 7]"},
                      Case{"ZeroScale", "tiny-llama-fp8-block",
                           "model.layers.1.self_attn.o_proj.weight_scale_inv", 0, f32(0.0f),
                           "scale 0 at [0, 0] is not a finite positive number"},
                      Case{"NegativeScale", "tiny-llama-fp8-block",
                           "model.layers.1.self_attn.k_proj.weight_scale_inv", 4, f32(-1.0f),
                           "scale -1 at [0, 1] is not a finite positive number"}),
    [](const auto& p) { return p.param.name; });

TEST(BadValuesCli, QuantizeRefusesTooAndWritesNothing) {
  TempDir tmp;
  poisoned_copy("tiny-llama", tmp / "model", "model.norm.weight", 4, {0x80, 0xFF});
  const CliResult r = run_cli("quantize --model " + (tmp / "model").string() +
                              " --mode block --out " + (tmp / "out").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: model.norm.weight: contains Inf at [2]\n");
  EXPECT_FALSE(fs::exists(tmp / "out"));
}

TEST(BadValuesCli, Fp8ConfigOverBf16WeightsIsRefusedBeforeTheLoadLine) {
  TempDir tmp;
  copy_dir(data_path("tiny-llama"), tmp / "model");
  std::string config;
  {
    std::ifstream in(tmp / "model" / "config.json");
    config.assign(std::istreambuf_iterator<char>(in), {});
  }
  config.insert(config.find('{') + 1,
                R"("quantization_config": {"quant_method": "fp8", "fmt": "e4m3", )"
                R"("activation_scheme": "dynamic", "weight_block_size": [128, 128]},)");
  std::ofstream(tmp / "model" / "config.json") << config;
  const CliResult r = run_cli("run --model " + (tmp / "model").string() + " --prompt hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: " + (tmp / "model" / "config.json").string() +
                       ": quantization_config says the weights are FP8 (fine-grained fp8, block "
                       "128x128), but no projection is F8_E4M3 (tensor "
                       "'model.layers.0.mlp.down_proj.weight' is BF16); remove the "
                       "quantization_config to quantize the BF16 weights on the fly\n");
}

}  // namespace
}  // namespace fp8llm::test
