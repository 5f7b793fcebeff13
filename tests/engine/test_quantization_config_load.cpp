// LoadOptions::quantization_config through the C++ API: a torchao config loads exactly as the mode
// it names, with `quantization` "auto" or that same mode, and the load line shows the mapping; a
// `quantization` that says otherwise, or a config the engine cannot honour, is one Error line.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "fp8llm/engine.h"
#include "reference.h"
#include "test_util.h"
#include "torchao_config.h"

namespace fp8llm::test {
namespace {

std::vector<std::string>& lines() {
  static std::vector<std::string> l;
  return l;
}
void capture(LogLevel level, std::string_view line) {
  lines().push_back(std::string(level == LogLevel::Warning ? "W " : "I ") + std::string(line));
}

// Loads with the log captured into lines(); `registry` names a file that does not exist, so the
// load line is the on-the-fly one.
std::unique_ptr<Engine> load(const std::string& quantization, const std::string& config,
                             const std::string& model = "tiny-llama") {
  lines().clear();
  set_log_sink(capture);
  try {
    auto engine = Engine::load({.model_dir = data_path(model),
                                .quantization = parse_quantization(quantization),
                                .quantization_config = config,
                                .registry = data_path("no-registry.json")});
    set_log_sink(nullptr);
    return engine;
  } catch (...) {
    set_log_sink(nullptr);
    throw;
  }
}

std::string load_error(const std::string& quantization, const std::string& config) {
  return error_of([&] { load(quantization, config); });
}

// The logits of every reference prompt, one after the other.
std::vector<float> all_logits(Engine& engine) {
  std::vector<float> out;
  for (const auto& prompt : Reference::load("tiny-llama").prompts) {
    const std::vector<float> l = engine.logits(prompt);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

const std::string kOnTheFly = "load: " + data_path("tiny-llama").string() +
                              " is not FP8 and has no registered {0} copy (registry " +
                              data_path("no-registry.json").string() +
                              "): quantizing to {0} on the fly";
const std::string kPerRowMapping =
    " (--quantization-config: torchao Float8DynamicActivationFloat8WeightConfig, granularity "
    "[PerRow, PerRow] -> fp8-row)";

std::string on_the_fly(const std::string& mode) {
  return fmt::format(fmt::runtime(kOnTheFly), mode);
}

TEST(QuantizationConfigLoad, TorchaoPerRowWithAutoLoadsFp8RowAndLogsTheMapping) {
  const auto engine = load("auto", kTorchaoPerRow);
  EXPECT_EQ(to_string(engine->load_report().quantization), "fp8-row");
  ASSERT_EQ(lines().size(), 1u);
  EXPECT_EQ(lines()[0], "I " + on_the_fly("fp8-row") + kPerRowMapping);

  const auto explicit_row = load("fp8-row", "");
  EXPECT_EQ(lines()[0], "I " + on_the_fly("fp8-row"));
  const std::vector<float> got = all_logits(*engine);
  EXPECT_TRUE(same_bits(got, all_logits(*explicit_row))) << "logits differ from an fp8-row load";
  // The config did decide: fp8-block (the mode auto picks without it) computes other logits.
  const std::vector<float> block = all_logits(*load("auto", ""));
  EXPECT_GT(rel_l2(got, block), 1e-3);
}

TEST(QuantizationConfigLoad, TheSameModeGivenBothWaysIsFine) {
  const auto engine = load("fp8-row", kTorchaoPerRow);
  EXPECT_EQ(to_string(engine->load_report().quantization), "fp8-row");
  ASSERT_EQ(lines().size(), 1u);
  EXPECT_EQ(lines()[0], "I " + on_the_fly("fp8-row") + kPerRowMapping);
}

TEST(QuantizationConfigLoad, TorchaoPerBlockLoadsFp8Block) {
  // Wrapped as vLLM's hf_overrides carry it.
  const auto engine = load("auto", as_vllm_hf_overrides(torchao_per_block()).dump());
  EXPECT_EQ(to_string(engine->load_report().quantization), "fp8-block");
  ASSERT_EQ(lines().size(), 1u);
  EXPECT_EQ(lines()[0], "I " + on_the_fly("fp8-block") +
                            " (--quantization-config: torchao "
                            "Float8DynamicActivationFloat8WeightConfig, granularity "
                            "[PerBlock([1, 128]), PerBlock([128, 128])] -> fp8-block)");
  EXPECT_TRUE(same_bits(all_logits(*engine), all_logits(*load("fp8-block", ""))));
}

TEST(QuantizationConfigLoad, AnFp8CheckpointLoadsAsStoredWithTheConfigNamed) {
  const auto engine = load("auto", kTorchaoPerRow, "tiny-llama-fp8-block");
  // The stored scheme, not the config's: nothing is quantized again.
  EXPECT_EQ(to_string(engine->load_report().quantization), "fp8-block");
  EXPECT_EQ(engine->load_report().quantized_tensors, 0u);
  ASSERT_EQ(lines().size(), 2u);
  const std::string dir = data_path("tiny-llama-fp8-block").string();
  EXPECT_EQ(lines()[0],
            "W load: --quantization-config (torchao Float8DynamicActivationFloat8WeightConfig, "
            "granularity [PerRow, PerRow], i.e. fp8-row) ignored: " +
                dir +
                " is already FP8 (fine-grained fp8, block 128x128, i.e. fp8-block); it is not "
                "quantized again");
  EXPECT_EQ(lines()[1], "I load: " + dir +
                            " is already FP8 (fine-grained fp8, block 128x128): loading as is" +
                            kPerRowMapping);
}

TEST(QuantizationConfigLoad, ADisagreeingQuantizationIsAnErrorNamingBoth) {
  // fp8-block is LoadOptions' default: a config asking for rows must come with "auto".
  EXPECT_EQ(load_error("fp8-block", kTorchaoPerRow),
            "--quantization fp8-block and --quantization-config (torchao "
            "Float8DynamicActivationFloat8WeightConfig, granularity [PerRow, PerRow], i.e. "
            "fp8-row) disagree; give one of them, or the same mode in both");
  EXPECT_EQ(load_error("none", kTorchaoPerRow),
            "--quantization none and --quantization-config (torchao "
            "Float8DynamicActivationFloat8WeightConfig, granularity [PerRow, PerRow], i.e. "
            "fp8-row) disagree; give one of them, or the same mode in both");
}

TEST(QuantizationConfigLoad, AConfigTheEngineCannotHonourIsAnErrorNamingItsPath) {
  nlohmann::json per_tensor = nlohmann::json::parse(kTorchaoPerRow);
  per_tensor["_data"]["granularity"][0] = {{"_type", "PerTensor"},
                                           {"_data", nlohmann::json::object()}};
  EXPECT_EQ(load_error("auto", per_tensor.dump()),
            "quantization-config: _data.granularity[0]: PerTensor is not supported (use PerRow or "
            "PerBlock)");
  EXPECT_EQ(load_error("auto", "{granularity").rfind("quantization-config: not valid JSON (", 0),
            0u);
}

}  // namespace
}  // namespace fp8llm::test
