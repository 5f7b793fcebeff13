// Load resolution: each branch is chosen in its situation and says why in one logged line.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"
#include "core/file_util.h"
#include "core/log.h"
#include "loader/quantize_checkpoint.h"
#include "loader/registry.h"
#include "loader/resolve.h"
#include "loader/sha256.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {
namespace fs = std::filesystem;

std::vector<std::string>& lines() {
  static std::vector<std::string> l;
  return l;
}
void capture(LogLevel level, std::string_view line) {
  lines().push_back(std::string(level == LogLevel::Warning ? "W " : "I ") + std::string(line));
}

// Resolves with logs captured; returns the resolution, logs in lines().
Resolution resolve(ResolveRequest r) {
  lines().clear();
  set_log_sink(capture);
  try {
    Resolution res = resolve_load(r);
    set_log_sink(nullptr);
    return res;
  } catch (...) {
    set_log_sink(nullptr);
    throw;
  }
}

bool logged(const std::string& text) {
  for (const auto& l : lines())
    if (l.find(text) != std::string::npos) return true;
  return false;
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string(1000, 'a')),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST(Resolve, AlreadyFp8LoadsAsIsAndWarnsAboutAnotherRequest) {
  TempDir tmp;
  const auto dir = data_path("tiny-llama-fp8-block");
  Resolution r =
      resolve({.model_dir = dir, .quantization = Quantization::Fp8Row, .registry = tmp / "r.json"});
  EXPECT_EQ(r.source, LoadSource::AsStored);
  EXPECT_EQ(r.model_dir, dir);
  EXPECT_FALSE(r.scheme.has_value());
  ASSERT_EQ(lines().size(), 2u);
  EXPECT_TRUE(logged("W load: --quantization fp8-row ignored: " + dir.string() +
                     " is already FP8 (fine-grained fp8, block 128x128, i.e. fp8-block)"));
  EXPECT_EQ(lines()[1], "I load: " + dir.string() +
                            " is already FP8 (fine-grained fp8, block 128x128): loading as is");
  // The matching request (or auto) gives no warning.
  resolve({.model_dir = dir, .quantization = Quantization::Auto, .registry = tmp / "r.json"});
  EXPECT_EQ(lines().size(), 1u);
}

TEST(Resolve, NoneLoadsUnquantized) {
  TempDir tmp;
  Resolution r = resolve({.model_dir = data_path("tiny-llama"),
                          .quantization = Quantization::None,
                          .registry = tmp / "r.json"});
  EXPECT_EQ(r.source, LoadSource::Unquantized);
  EXPECT_TRUE(logged("--quantization none: loading the bfloat16 weights unquantized"));
}

TEST(Resolve, AutoOnABf16CheckpointQuantizesFp8BlockOnTheFly) {
  TempDir tmp;
  Resolution r = resolve({.model_dir = data_path("tiny-llama"),
                          .quantization = Quantization::Auto,
                          .registry = tmp / "r.json"});
  EXPECT_EQ(r.source, LoadSource::OnTheFly);
  EXPECT_EQ(r.scheme, Fp8Scheme::Block);
  EXPECT_TRUE(logged("is not FP8 and has no registered fp8-block copy (registry " +
                     (tmp / "r.json").string() +
                     "): quantizing to fp8-block on the fly (auto: fp8-block"));
  r = resolve({.model_dir = data_path("tiny-llama"),
               .quantization = Quantization::Fp8Row,
               .registry = tmp / "r.json"});
  EXPECT_EQ(r.scheme, Fp8Scheme::Row);
  EXPECT_TRUE(logged("quantizing to fp8-row on the fly"));
}

TEST(Resolve, RegisteredCopyIsUsedForItsModeOnly) {
  TempDir tmp;
  const fs::path src = tmp / "llama";
  copy_dir(data_path("tiny-llama"), src);
  quantize_checkpoint(src, Fp8Scheme::Row, tmp / "llama-row");
  register_copy(tmp / "cfg/r.json", src, "fp8-row", tmp / "llama-row");
  Resolution r = resolve(
      {.model_dir = src, .quantization = Quantization::Fp8Row, .registry = tmp / "cfg/r.json"});
  EXPECT_EQ(r.source, LoadSource::Registered);
  EXPECT_EQ(r.model_dir, fs::canonical(tmp / "llama-row"));
  EXPECT_TRUE(
      logged("has a registered fp8-row copy at " + fs::canonical(tmp / "llama-row").string()));
  r = resolve(
      {.model_dir = src, .quantization = Quantization::Fp8Block, .registry = tmp / "cfg/r.json"});
  EXPECT_EQ(r.source, LoadSource::OnTheFly);
  // A changed config.json no longer matches its copies.
  write_text_file_atomically(src / "config.json", read_text_file(src / "config.json") + " ");
  r = resolve(
      {.model_dir = src, .quantization = Quantization::Fp8Row, .registry = tmp / "cfg/r.json"});
  EXPECT_EQ(r.source, LoadSource::OnTheFly);
  EXPECT_TRUE(logged("was made from a different config.json; not used"));
}

// auto takes a registered copy of either mode, fp8-block first (it used to look for an fp8-block
// copy only, and quantized on the fly beside a registered fp8-row copy).
TEST(Resolve, AutoUsesARegisteredCopyOfEitherMode) {
  TempDir tmp;
  const fs::path src = tmp / "llama";
  copy_dir(data_path("tiny-llama"), src);
  const ResolveRequest auto_request{
      .model_dir = src, .quantization = Quantization::Auto, .registry = tmp / "r.json"};
  quantize_checkpoint(src, Fp8Scheme::Row, tmp / "llama-row");
  register_copy(tmp / "r.json", src, "fp8-row", tmp / "llama-row");
  Resolution r = resolve(auto_request);
  EXPECT_EQ(r.source, LoadSource::Registered);
  EXPECT_EQ(r.model_dir, fs::canonical(tmp / "llama-row"));
  EXPECT_TRUE(logged("has a registered fp8-row copy at " +
                     fs::canonical(tmp / "llama-row").string() + " (registry " +
                     (tmp / "r.json").string() +
                     "): loading it as is (auto: a registered copy, fp8-block first)"));
  quantize_checkpoint(src, Fp8Scheme::Block, tmp / "llama-block");
  register_copy(tmp / "r.json", src, "fp8-block", tmp / "llama-block");
  r = resolve(auto_request);
  EXPECT_EQ(r.model_dir, fs::canonical(tmp / "llama-block"));
  // A mode that is asked for takes its own copy only.
  r = resolve({.model_dir = src, .quantization = Quantization::Fp8Row, .registry = tmp / "r.json"});
  EXPECT_EQ(r.model_dir, fs::canonical(tmp / "llama-row"));
}

TEST(Resolve, OfflineQuantizesOnceIntoTheCache) {
  TempDir tmp;
  ResolveRequest req{.model_dir = data_path("tiny-llama"),
                     .quantization = Quantization::Fp8Block,
                     .registry = tmp / "r.json",
                     .offline = true,
                     .cache_dir = tmp / "cache"};
  Resolution r = resolve(req);
  EXPECT_EQ(r.source, LoadSource::Cached);
  EXPECT_TRUE(fs::exists(r.model_dir / "model.safetensors"));
  EXPECT_TRUE(logged("--offline: quantized once to fp8-block into the cache"));
  const auto written = fs::last_write_time(r.model_dir / "model.safetensors");
  Resolution again = resolve(req);
  EXPECT_EQ(again.model_dir, r.model_dir);
  EXPECT_TRUE(logged("--offline: loading the cached fp8-block copy"));
  EXPECT_EQ(fs::last_write_time(again.model_dir / "model.safetensors"), written);
}

TEST(Resolve, BadRegistryAndFlagAreNamed) {
  TempDir tmp;
  write_text_file_atomically(tmp / "r.json", "{not json");
  try {
    resolve({.model_dir = data_path("tiny-llama"),
             .quantization = Quantization::Fp8Row,
             .registry = tmp / "r.json"});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("r.json: not valid JSON"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      resolve({.model_dir = data_path("tiny-llama"), .quantization = parse_quantization("int4")}),
      Error);
}

// config_to_dict(Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())), trimmed to
// what differs from torchao's defaults.
const std::string kTorchaoPerRow = R"({"_type": "Float8DynamicActivationFloat8WeightConfig",
  "_version": 2, "_data": {"granularity": [{"_type": "PerRow", "_version": 1, "_data": {"dim": -1}},
                                           {"_type": "PerRow", "_version": 1, "_data": {"dim": -1}}]}})";

TEST(Resolve, QuantizationConfigDecidesTheModeAndIsNamedInTheLoadLine) {
  TempDir tmp;
  Resolution r = resolve({.model_dir = data_path("tiny-llama"),
                          .quantization = Quantization::Auto,
                          .registry = tmp / "r.json",
                          .quantization_config = kTorchaoPerRow});
  EXPECT_EQ(r.source, LoadSource::OnTheFly);
  EXPECT_EQ(r.scheme, Fp8Scheme::Row);
  ASSERT_EQ(lines().size(), 1u);
  EXPECT_EQ(lines()[0],
            "I load: " + data_path("tiny-llama").string() +
                " is not FP8 and has no registered fp8-row copy (registry " +
                (tmp / "r.json").string() +
                "): quantizing to fp8-row on the fly (--quantization-config: torchao "
                "Float8DynamicActivationFloat8WeightConfig, granularity [PerRow, PerRow] -> "
                "fp8-row)");
  EXPECT_EQ(r.reason, lines()[0].substr(2));
  // The same mode given twice is fine; the fp8 form asks for fp8-block.
  r = resolve({.model_dir = data_path("tiny-llama"),
               .quantization = Quantization::Fp8Row,
               .registry = tmp / "r.json",
               .quantization_config = kTorchaoPerRow});
  EXPECT_EQ(r.scheme, Fp8Scheme::Row);
  r = resolve(
      {.model_dir = data_path("tiny-llama"),
       .quantization = Quantization::Auto,
       .registry = tmp / "r.json",
       .quantization_config = R"({"quant_method": "fp8", "weight_block_size": [128, 128]})"});
  EXPECT_EQ(r.scheme, Fp8Scheme::Block);
  EXPECT_TRUE(
      logged("quantizing to fp8-block on the fly (--quantization-config: fp8, "
             "weight_block_size [128, 128] -> fp8-block)"));
}

TEST(Resolve, QuantizationConfigUsesARegisteredCopyOfItsMode) {
  TempDir tmp;
  const fs::path src = tmp / "llama";
  copy_dir(data_path("tiny-llama"), src);
  quantize_checkpoint(src, Fp8Scheme::Row, tmp / "llama-row");
  register_copy(tmp / "r.json", src, "fp8-row", tmp / "llama-row");
  Resolution r = resolve({.model_dir = src,
                          .quantization = Quantization::Auto,
                          .registry = tmp / "r.json",
                          .quantization_config = kTorchaoPerRow});
  EXPECT_EQ(r.source, LoadSource::Registered);
  EXPECT_TRUE(
      logged("loading it as is (--quantization-config: torchao "
             "Float8DynamicActivationFloat8WeightConfig, granularity [PerRow, PerRow] -> "
             "fp8-row)"));
}

TEST(Resolve, QuantizationConfigOnAnFp8CheckpointIsIgnoredWithAWarning) {
  TempDir tmp;
  const auto dir = data_path("tiny-llama-fp8-block");
  Resolution r = resolve({.model_dir = dir,
                          .quantization = Quantization::Auto,
                          .registry = tmp / "r.json",
                          .quantization_config = kTorchaoPerRow});
  EXPECT_EQ(r.source, LoadSource::AsStored);
  ASSERT_EQ(lines().size(), 2u);
  EXPECT_EQ(lines()[0],
            "W load: --quantization-config (torchao Float8DynamicActivationFloat8WeightConfig, "
            "granularity [PerRow, PerRow], i.e. fp8-row) ignored: " +
                dir.string() +
                " is already FP8 (fine-grained fp8, block 128x128, i.e. fp8-block); it is not "
                "quantized again");
}

TEST(Resolve, QuantizationConfigErrors) {
  TempDir tmp;
  const auto error = [&](const std::string& quantization, const std::string& config) {
    try {
      resolve({.model_dir = data_path("tiny-llama"),
               .quantization = parse_quantization(quantization),
               .registry = tmp / "r.json",
               .quantization_config = config});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("fp8-block", kTorchaoPerRow),
            "--quantization fp8-block and --quantization-config (torchao "
            "Float8DynamicActivationFloat8WeightConfig, granularity [PerRow, PerRow], i.e. "
            "fp8-row) disagree; give one of them, or the same mode in both");
  EXPECT_EQ(error("none", kTorchaoPerRow).rfind("--quantization none and --quantization-config", 0),
            0u);
  EXPECT_EQ(error("auto", R"({"_type": "Float8DynamicActivationFloat8WeightConfig", "_data": {
                               "granularity": {"_type": "PerTensor", "_data": {}}}})"),
            "quantization-config: _data.granularity: PerTensor is not supported (use PerRow or "
            "PerBlock)");
  EXPECT_TRUE(lines().empty());  // nothing was chosen, so nothing logged
}

TEST(Registry, DefaultPathFollowsTheEnvironment) {
  const char* old_reg = std::getenv("FP8LLM_REGISTRY");
  const std::string saved = old_reg ? old_reg : "";
  const char* old_home = std::getenv("HOME");
  const std::string saved_home = old_home ? old_home : "";
  setenv("FP8LLM_REGISTRY", "/x/reg.json", 1);
  EXPECT_EQ(default_registry_path(), "/x/reg.json");
  unsetenv("FP8LLM_REGISTRY");
  setenv("XDG_CONFIG_HOME", "/cfg", 1);
  EXPECT_EQ(default_registry_path(), "/cfg/fp8llm/registry.json");
  unsetenv("XDG_CONFIG_HOME");
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(default_registry_path(), "/home/u/.config/fp8llm/registry.json");
  if (!saved.empty()) setenv("FP8LLM_REGISTRY", saved.c_str(), 1);
  setenv("HOME", saved_home.c_str(), 1);
}

}  // namespace
}  // namespace fp8llm::test
