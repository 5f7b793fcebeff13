// The CUDA engine's state dict equals the CPU engine's byte for byte, in every mode and in both
// forms (the device's padded block-scale rows trimmed, bf16 tensors as held), and exporting from
// the GPU writes the reference FP8 checkpoint. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "../engine/state_dict_expect.h"
#include "backend/cuda/runtime/device.h"
#include "engine/export_checkpoint.h"
#include "fp8llm/engine.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

using Case = ModelCase;

std::unique_ptr<Engine> load(const std::string& model, const std::string& quantization,
                             const std::string& device) {
  return Engine::load({.model_dir = data_path(model),
                       .quantization = parse_quantization(quantization),
                       .registry = data_path("no-registry.json"),
                       .device = parse_device(device),
                       .max_context = 64});
}

class CudaStateDict : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaStateDict, EqualsTheCpuStateDict) {
  const Case& c = GetParam();
  const auto gpu = load(c.model, c.quantization, "cuda");
  const auto cpu = load(c.model, c.quantization, "cpu");
  EXPECT_EQ(gpu->load_report().quantization, cpu->load_report().quantization);
  for (const StateDictForm form : {StateDictForm::Stored, StateDictForm::Dequantized}) {
    const std::vector<StateDictEntry> g = gpu->state_dict(form), h = cpu->state_dict(form);
    ASSERT_EQ(g.size(), h.size());
    for (size_t i = 0; i < g.size(); ++i) {
      EXPECT_EQ(g[i].name, h[i].name);
      EXPECT_EQ(g[i].dtype, h[i].dtype) << g[i].name;
      EXPECT_EQ(g[i].shape, h[i].shape) << g[i].name;
    }
    expect_same_tensors(state_dict_of(*gpu, form), state_dict_of(*cpu, form));
    // The visitor reads the same bytes.
    size_t i = 0;
    gpu->visit_state_dict(form, [&](const StateDictTensor& t) {
      ASSERT_LT(i, h.size());
      EXPECT_EQ(t.bytes, cpu->state_dict_tensor(h[i].name, form).bytes) << h[i].name;
      ++i;
    });
    EXPECT_EQ(i, h.size());
  }
}

INSTANTIATE_TEST_SUITE_P(
    StateDict, CudaStateDict,
    ::testing::Values(Case{"tiny-llama", "none"}, Case{"tiny-llama", "fp8-row"},
                      Case{"tiny-llama", "fp8-block"}, Case{"tiny-llama-fp8-block", "auto"},
                      Case{"tiny-qwen2", "fp8-row"}, Case{"tiny-qwen2", "fp8-block"},
                      Case{"tiny-qwen3", "fp8-block"}),
    model_case_name);

TEST(CudaExport, WritesTheReferenceFp8Checkpoint) {
  if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  for (const std::string mode : {"fp8-row", "fp8-block"}) {
    TempDir tmp;
    const auto gpu = load("tiny-qwen2", mode, "cuda");
    export_checkpoint(*gpu, data_path("tiny-qwen2"), tmp / "out");
    expect_same_tensors(tensors_of_dir(tmp / "out"),
                        tensors_of_file(data_path(expected_file("tiny-qwen2", mode))));
  }
}

}  // namespace
}  // namespace fp8llm::test
