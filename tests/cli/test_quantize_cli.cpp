// Pre-quantized checkpoints give the logits of on-the-fly quantization: the fine-grained fixture,
// and what `fp8llm quantize` writes in both modes (loaded directly and through the registry).
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/file_util.h"
#include "fp8llm/engine.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {
namespace fs = std::filesystem;

std::vector<int32_t> prompt(int i) {
  std::ifstream in(data_path("tiny-llama/reference.json"));
  const auto ref = nlohmann::json::parse(in);
  return ref["prompts"][i].get<std::vector<int32_t>>();
}

std::vector<float> logits(const fs::path& dir, const std::string& q, int p,
                          const fs::path& registry = {}, std::string* scheme = nullptr) {
  LoadOptions o{.model_dir = dir, .quantization = parse_quantization(q)};
  o.registry = registry.empty() ? fs::path(data_path("no-registry.json")) : registry;
  auto e = Engine::load(o);
  if (scheme) *scheme = to_string(e->load_report().quantization);
  return e->logits(prompt(p));
}

TEST(PrequantizedLogits, FineGrainedFixtureEqualsOnTheFly) {
  for (int p : {1, 2}) {
    std::string scheme;
    const auto got = logits(data_path("tiny-llama-fp8-block"), "fp8-row", p, {}, &scheme);
    const auto want = logits(data_path("tiny-llama"), "fp8-block", p);
    EXPECT_EQ(scheme, "fp8-block");
    EXPECT_LT(rel_l2(got, want), 1e-4) << "prompt " << p;
    EXPECT_EQ(got, want) << "prompt " << p;  // the same bytes, the same arithmetic
  }
}

TEST(QuantizeCli, OutputLoadsWithTheLogitsOfOnTheFly) {
  TempDir tmp;
  for (const char* mode : {"block", "row"}) {
    const fs::path out = tmp / mode;
    const CliResult r = run_cli("quantize --model " + data_path("tiny-llama").string() +
                                " --mode " + mode + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find(std::string("to fp8-") + mode), std::string::npos) << r.err;
    std::string scheme;
    const auto got = logits(out, "auto", 2, {}, &scheme);
    EXPECT_EQ(scheme, std::string("fp8-") + mode);
    const auto want = logits(data_path("tiny-llama"), std::string("fp8-") + mode, 2);
    EXPECT_LT(rel_l2(got, want), 1e-4) << mode;
    EXPECT_EQ(got, want) << mode;
  }
}

TEST(QuantizeCli, RegisteredCopyIsLoadedInsteadOfTheOriginal) {
  TempDir tmp;
  const fs::path src = tmp / "llama";
  copy_dir(data_path("tiny-llama"), src);
  const fs::path registry = tmp / "registry.json";
  const CliResult r =
      run_cli("quantize --model " + src.string() + " --mode row --out " +
              (tmp / "llama-row").string() + " --register --registry " + registry.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("registered"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(read_text_file(registry));
  EXPECT_EQ(j["models"][0]["copies"]["fp8-row"], fs::canonical(tmp / "llama-row").string());
  // Remove the original's weights: only the registered copy can give these logits now.
  fs::remove(src / "model.safetensors");
  const auto got = logits(src, "fp8-row", 1, registry);
  const auto want = logits(data_path("tiny-llama"), "fp8-row", 1);
  EXPECT_EQ(got, want);
}

TEST(QuantizeCli, BadInputsAreOneLineErrors) {
  TempDir tmp;
  CliResult r = run_cli("quantize --model " + data_path("tiny-llama").string() +
                        " --mode int4 --out " + (tmp / "o").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--mode 'int4' is not one of: block, row"), std::string::npos) << r.err;
  r = run_cli("quantize --model " + data_path("tiny-llama-fp8-block").string() +
              " --mode block --out " + (tmp / "o").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("already an FP8 checkpoint"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "o"));
}

TEST(QuantizeCli, WhatAKilledRunLeftIsRemoved) {
  // What `kill -9` during quantize leaves: the temporary directory of a process that is gone.
  TempDir tmp;
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  const fs::path left = tmp / ("o.fp8llm-tmp-" + std::to_string(pid) + "-00c0ffee");
  fs::create_directory(left);
  std::ofstream(left / "model.safetensors") << "half";
  const CliResult r = run_cli("quantize --model " + data_path("tiny-llama").string() +
                              " --mode row --out " + (tmp / "o").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("removed " + left.string() + ", left by process " + std::to_string(pid) +
                       ", which no longer runs"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(left));
  EXPECT_TRUE(fs::exists(tmp / "o" / "config.json"));
}

}  // namespace
}  // namespace fp8llm::test
