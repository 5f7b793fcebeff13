// Loading with on-the-fly quantization leaves exactly the bytes of the reference quantizer in
// memory: every FP8 weight and every scale equal expected_fp8_{row,block}.safetensors, and every
// other tensor is the checkpoint's own bytes.
#include <gtest/gtest.h>

#include <cstring>

#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "loader/host_sink.h"
#include "loader/load_plan.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

void expect_same_bytes(const HostTensor& got, const TensorView& want, const std::string& name) {
  ASSERT_EQ(got.dtype, want.dtype) << name;
  ASSERT_EQ(got.shape, want.shape) << name;
  ASSERT_EQ(got.bytes.size(), want.nbytes) << name;
  EXPECT_EQ(std::memcmp(got.bytes.data(), want.data, want.nbytes), 0) << name << " differs";
}

void check_model(const std::string& model, Fp8Scheme scheme) {
  const auto dir = data_path(model);
  const ModelConfig config = load_model_config(dir);
  const Checkpoint checkpoint = Checkpoint::open(dir);
  const LoadPlan plan = build_load_plan(checkpoint, config, scheme);
  HostWeights w = load_host_weights(plan);
  const auto expected = SafetensorsFile::open(
      dir / (scheme == Fp8Scheme::Row ? "expected_fp8_row.safetensors"
                                      : "expected_fp8_block.safetensors"));
  size_t compared = 0;
  for (const PlannedTensor& t : plan.tensors) {
    const HostTensor* slot = host_slot(w, t.spec);
    ASSERT_NE(slot, nullptr) << t.spec.name;
    expect_same_bytes(*slot, expected->view(t.spec.name), t.spec.name);
    ++compared;
    if (t.quantize) {
      const HostLinear* lin = host_linear(w, t.spec);
      expect_same_bytes(lin->scale, expected->view(weight_scale_name(scheme, t.spec.name)),
                        weight_scale_name(scheme, t.spec.name));
      ++compared;
    }
  }
  // Every tensor of the expected file was compared.
  EXPECT_EQ(compared, expected->tensors().size());
}

TEST(HostWeights, TinyLlamaRowEqualsReference) { check_model("tiny-llama", Fp8Scheme::Row); }
TEST(HostWeights, TinyLlamaBlockEqualsReference) { check_model("tiny-llama", Fp8Scheme::Block); }
TEST(HostWeights, TinyQwen2RowEqualsReference) { check_model("tiny-qwen2", Fp8Scheme::Row); }
TEST(HostWeights, TinyQwen2BlockEqualsReference) { check_model("tiny-qwen2", Fp8Scheme::Block); }

TEST(HostWeights, ResidentBytesMatchThePlan) {
  const auto dir = data_path("tiny-qwen2");
  const ModelConfig config = load_model_config(dir);
  const Checkpoint checkpoint = Checkpoint::open(dir);
  for (auto scheme : {std::optional<Fp8Scheme>{}, std::optional{Fp8Scheme::Row},
                      std::optional{Fp8Scheme::Block}}) {
    const LoadPlan plan = build_load_plan(checkpoint, config, scheme);
    EXPECT_EQ(load_host_weights(plan).resident_bytes(), plan.resident_bytes);
  }
}

}  // namespace
}  // namespace fp8llm::test
