// LoRA on the GPU: a batch of 64 requests over 4 adapters and the base model gives each request
// the tokens it gets alone (--fp8-gemm fp32), and the GPU's log-probabilities stay within fp32
// rounding of the CPU reference's.
#include <gtest/gtest.h>

#include <random>

#include "../engine/lora_fixture.h"
#include "backend/cuda/runtime/device.h"
#include "fp8llm/engine.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

class CudaLora : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

std::unique_ptr<Engine> load(Device d, Fp8Gemm g = Fp8Gemm::Fp32) {
  return Engine::load({.model_dir = data_path("tiny-llama"),
                       .quantization = Quantization::Fp8Block,
                       .device = d,
                       .fp8_gemm = g,
                       .kv_cache_dtype = KvCacheDtype::F32,
                       .kv_memory_gib = d == Device::Cuda ? 0.5 : 0,
                       .max_loras = 4,
                       .max_lora_rank = 32});
}

std::vector<GenerationRequest> requests() {
  std::mt19937 rng(9);
  std::vector<GenerationRequest> out;
  for (int i = 0; i < 64; ++i) {
    std::vector<int32_t> p;
    for (int j = 0; j < 4 + i % 37; ++j) p.push_back(static_cast<int32_t>(5 + rng() % 1000));
    const std::string lora = i % 5 == 4 ? "" : "a" + std::to_string(i % 5);
    out.push_back({p, {.max_tokens = 8, .ignore_eos = true, .logprobs = 0}, lora});
  }
  return out;
}

TEST_F(CudaLora, MixedBatchEqualsAloneAndTracksTheCpu) {
  TempDir tmp;
  for (int i = 0; i < 4; ++i)
    TinyAdapter{.rank = 8 * (i + 1), .seed = 40u + static_cast<uint32_t>(i)}.write(
        tmp / ("a" + std::to_string(i)));
  auto gpu = load(Device::Cuda);
  auto cpu = load(Device::Cpu);
  for (int i = 0; i < 4; ++i) {
    gpu->add_lora("a" + std::to_string(i), tmp / ("a" + std::to_string(i)));
    cpu->add_lora("a" + std::to_string(i), tmp / ("a" + std::to_string(i)));
  }
  const std::vector<GenerationRequest> rs = requests();
  const std::vector<RequestOutput> together = gpu->generate(rs);
  const std::vector<RequestOutput> on_cpu = cpu->generate(rs);
  int differ_alone = 0, differ_cpu = 0;
  double worst_first = 0;
  for (size_t i = 0; i < rs.size(); ++i) {
    const RequestOutput alone = gpu->generate({rs[i]}).at(0);
    differ_alone += alone.outputs[0].token_ids != together[i].outputs[0].token_ids;
    differ_cpu += on_cpu[i].outputs[0].token_ids != together[i].outputs[0].token_ids;
    worst_first =
        std::max(worst_first, std::fabs(double(on_cpu[i].outputs[0].logprobs[0].logprob) -
                                        double(together[i].outputs[0].logprobs[0].logprob)));
  }
  std::printf(
      "lora batch of 64: %d differ from alone, %d from the cpu; worst first-token logprob "
      "gap to the cpu %.3e\n",
      differ_alone, differ_cpu, worst_first);
  EXPECT_EQ(differ_alone, 0);
  EXPECT_LE(differ_cpu, 16);
  EXPECT_LT(worst_first, 5e-2);
}

}  // namespace
}  // namespace fp8llm::test
