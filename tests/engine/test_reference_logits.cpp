// The CPU engine against the transformers references: every prompt of every fixture model, in
// each quantization mode. Tolerances from tests/data/README.md: `none` within 1e-4 of the fp32
// forward; fp8 modes within 4e-2 of the fp8 references (quantization is discontinuous: one
// activation rounded to the other side of an FP8 step spreads through the prompt) and prompt 0
// within 1e-4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "fp8llm/engine.h"
#include "reference.h"

namespace fp8llm::test {
namespace {

struct Case {
  std::string model;
  std::string quantization;
};

std::string reference_kind(const std::string& quantization) {
  if (quantization == "none") return "fp32";
  return quantization == "fp8-row" ? "fp8_row" : "fp8_block";
}

std::string case_name(const ::testing::TestParamInfo<Case>& param_info) {
  std::string name = param_info.param.model + "_" + param_info.param.quantization;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

class ReferenceLogits : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceLogits, EveryPromptWithinTolerance) {
  const Case& c = GetParam();
  const Reference ref = Reference::load(c.model);
  auto engine = Engine::load(
      {.model_dir = data_path(c.model), .quantization = parse_quantization(c.quantization)});
  const std::string kind = reference_kind(c.quantization);
  for (size_t p = 0; p < ref.prompts.size(); ++p) {
    const std::vector<float> got = engine->logits(ref.prompts[p]);
    const std::vector<float> want = ref.expected(kind, p);
    const double err = rel_l2(got, want);
    const double bound = (c.quantization == "none" || p == 0) ? 1e-4 : 4e-2;
    std::printf("%s %s prompt %zu (%zu tokens): rel L2 vs %s = %.3e (bound %.0e)\n",
                c.model.c_str(), c.quantization.c_str(), p, ref.prompts[p].size(), kind.c_str(),
                err, bound);
    EXPECT_LT(err, bound) << c.model << " " << c.quantization << " prompt " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllModels, ReferenceLogits,
    ::testing::Values(Case{"tiny-llama", "none"}, Case{"tiny-llama", "fp8-row"},
                      Case{"tiny-llama", "fp8-block"}, Case{"tiny-qwen2", "none"},
                      Case{"tiny-qwen2", "fp8-row"}, Case{"tiny-qwen2", "fp8-block"},
                      Case{"tiny-qwen3", "none"}, Case{"tiny-qwen3", "fp8-row"},
                      Case{"tiny-qwen3", "fp8-block"}),
    case_name);

}  // namespace
}  // namespace fp8llm::test
