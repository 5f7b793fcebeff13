// The shipped trained models on the CPU: models/kjv-3m (trained by scripts/train/train_cpu.py,
// its reference from its own numpy forward pass) and models/kjv-6m (trained by
// scripts/train/train_model.py with PyTorch, its reference from transformers: reference.py). The
// engine against each stored reference (the tokenizer's ids, the logits of the first 64
// positions, the BF16 perplexity), and the perplexity of heldout-small.txt in each mode against
// the values measured once and published in docs/QUALITY.md. The CPU backend is deterministic,
// so those are stored to 1e-4 relative; the FP8 modes must stay within the documented margin of
// BF16.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "fp8llm/engine.h"
#include "tensor_values.h"
#include "test_util.h"
#include "text/text_model.h"

namespace fp8llm::test {
namespace {

struct Model {
  std::string name;
  // Perplexity of heldout-small.txt in each mode, measured once with this test's commands
  // (docs/QUALITY.md).
  std::map<std::string, double> perplexity;
  // FP8 against BF16, measured (KL mean, top token agreement): the bounds leave room for a
  // change of summation order, not for a wrong scale.
  double kl_mean_max, top_agreement_min;
};

// kjv-3m: KL mean 0.0056 (fp8-row) and 0.0054 (fp8-block), top token 95.3% in both.
// kjv-6m: KL mean 0.0029 and 0.0028, top token 97.4% and 96.9%.
const Model kModels[] = {
    {"kjv-3m",
     {{"none", 62.183253796876045}, {"fp8-row", 62.399968598679756},
      {"fp8-block", 62.22194051213807}},
     0.012,
     0.92},
    {"kjv-6m",
     {{"none", 23.811627560907027}, {"fp8-row", 23.801691458279635},
      {"fp8-block", 23.816427989122417}},
     0.008,
     0.93},
};
// FP8 may cost at most this much perplexity on these models (docs/QUALITY.md).
constexpr double kFp8Margin = 0.015;

// gtest names a case by this rather than by the object's bytes.
void PrintTo(const Model& m, std::ostream* out) { *out << m.name; }

class KjvModel : public ::testing::TestWithParam<Model> {
 protected:
  std::filesystem::path dir() const { return models_path(GetParam().name); }
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

nlohmann::json reference(const std::filesystem::path& model) {
  return nlohmann::json::parse(read_file(model / "reference.json"));
}

nlohmann::json perplexity(const std::filesystem::path& model, const std::string& mode,
                          const std::string& extra = "") {
  const CliResult r = run_cli("perplexity --model " + model.string() + " --file " +
                              (model / "heldout-small.txt").string() + " -q " + mode +
                              " --device cpu --json --quiet " + extra);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json{};
}

TEST_P(KjvModel, TokenizerGivesTheReferencesIds) {
  const auto ref = SafetensorsFile::open(dir() / "reference_logits.safetensors");
  const std::vector<int32_t> want = tensor_values<int32_t>(*ref, "ids");
  const std::vector<int32_t> ids =
      TextModel::load(dir()).encode(read_file(dir() / "heldout-small.txt"));
  ASSERT_EQ(ids.size(), reference(dir())["files"]["heldout-small.txt"]["tokens"].get<size_t>());
  ASSERT_GE(ids.size(), want.size());
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<long>(want.size())), want);
}

TEST_P(KjvModel, Bf16LogitsEqualTheReferenceForwardPass) {
  const auto ref = SafetensorsFile::open(dir() / "reference_logits.safetensors");
  const std::vector<int32_t> ids = tensor_values<int32_t>(*ref, "ids");
  const std::vector<float> want = tensor_values<float>(*ref, "logits");
  auto engine = Engine::load({.model_dir = dir(), .quantization = Quantization::None});
  const std::vector<float> got = engine->logits(ids);
  ASSERT_EQ(got.size(), want.size());
  double worst = 0, largest = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
    largest = std::max(largest, std::abs(static_cast<double>(want[i])));
  }
  // Both compute in fp32 over the same BF16 weights (transformers' reference with TF32 off);
  // only the summation order differs.
  std::printf("%s: largest logit difference %.3e (largest logit %.2f)\n", GetParam().name.c_str(),
              worst, largest);
  EXPECT_LT(worst, 1e-4) << "largest logit " << largest;
}

TEST_P(KjvModel, PerplexityInEachModeIsTheMeasuredOne) {
  const double stored =
      reference(dir())["files"]["heldout-small.txt"]["fp32"]["perplexity"].get<double>();
  std::map<std::string, double> got;
  for (const auto& [mode, want] : GetParam().perplexity) {
    const nlohmann::json r = perplexity(dir(), mode);
    ASSERT_TRUE(r.contains("perplexity")) << mode;
    got[mode] = r["perplexity"].get<double>();
    EXPECT_NEAR(got[mode] / want, 1.0, 1e-4) << mode << ": " << got[mode];
  }
  // BF16 is the reference's own number: the same windows, the same weights.
  EXPECT_NEAR(got["none"] / stored, 1.0, 1e-4) << got["none"] << " against " << stored;
  for (const char* mode : {"fp8-row", "fp8-block"}) {
    EXPECT_LT(got[mode] / got["none"] - 1, kFp8Margin) << mode;
  }
}

TEST_P(KjvModel, Fp8StaysCloseToBf16TokenByToken) {
  TempDir tmp;
  const std::string baseline = (tmp / "none.safetensors").string();
  ASSERT_TRUE(perplexity(dir(), "none", "--save-logits " + baseline).contains("perplexity"));
  for (const char* mode : {"fp8-row", "fp8-block"}) {
    const nlohmann::json r = perplexity(dir(), mode, "--baseline-logits " + baseline);
    ASSERT_TRUE(r.contains("baseline")) << mode;
    const nlohmann::json& b = r["baseline"];
    std::printf("%s %s: KL mean %.4f, top token agrees %.1f%%\n", GetParam().name.c_str(), mode,
                b["kl_mean"].get<double>(), 100 * b["top_agreement"].get<double>());
    EXPECT_LT(b["kl_mean"].get<double>(), GetParam().kl_mean_max) << mode;
    EXPECT_GT(b["top_agreement"].get<double>(), GetParam().top_agreement_min) << mode;
  }
}

INSTANTIATE_TEST_SUITE_P(Shipped, KjvModel, ::testing::ValuesIn(kModels),
                         [](const ::testing::TestParamInfo<Model>& param_info) {
                           std::string name = param_info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace fp8llm::test
