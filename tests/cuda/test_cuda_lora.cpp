// LoRA on the GPU: a batch of 64 requests over 4 adapters and the base model gives each request
// the tokens it gets alone (--fp8-gemm fp32), and the GPU's log-probabilities stay within fp32
// rounding of the CPU reference's; an adapter replaced from tensors on the device behaves as one
// replaced from host memory, and a bad device tensor changes nothing (not even a replacement
// still waiting for the next step).
#include <gtest/gtest.h>

#include <random>

#include "../engine/lora_fixture.h"
#include "backend/cuda/cuda_lora.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/dtype.h"
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

// Passes of a few tokens on the tensor cores add the adapters inside the projections' own kernel
// (kernels/fp8_gemv.h, cuda_lora.h). Prompts of kLoraInGemvMaxRows tokens, each alone (one such
// pass): every position's log-probability stays as close to the CPU reference's with an adapter
// as without one, while the adapters move them several times further than that bound (a wrong
// adapter, layer or projection would land about that far off).
TEST_F(CudaLora, TensorCorePassesOfFewTokensTrackTheCpu) {
  TempDir tmp;
  for (int i = 0; i < 4; ++i)
    TinyAdapter{.rank = 8 * (i + 1), .seed = 50u + static_cast<uint32_t>(i)}.write(
        tmp / ("a" + std::to_string(i)));
  auto gpu = load(Device::Cuda, Fp8Gemm::TensorCore);
  auto cpu = load(Device::Cpu);
  for (int i = 0; i < 4; ++i) {
    gpu->add_lora("a" + std::to_string(i), tmp / ("a" + std::to_string(i)));
    cpu->add_lora("a" + std::to_string(i), tmp / ("a" + std::to_string(i)));
  }
  std::mt19937 rng(11);
  double gap_lora = 0, gap_base = 0, moved = 0;
  for (int i = 0; i < 8; ++i) {
    GenerationRequest r;
    for (int64_t j = 0; j < cuda::kLoraInGemvMaxRows; ++j)
      r.prompt.push_back(static_cast<int32_t>(5 + rng() % 1000));
    r.params = {.max_tokens = 1, .prompt_logprobs = 0};
    GenerationRequest with = r;
    with.lora = "a" + std::to_string(i % 4);
    const auto logprobs = [](Engine& e, const GenerationRequest& q) {
      std::vector<double> out;
      for (const TokenLogprob& t : e.generate({q}).at(0).prompt_logprobs) out.push_back(t.logprob);
      return out;
    };
    const std::vector<double> g = logprobs(*gpu, with), c = logprobs(*cpu, with),
                              gb = logprobs(*gpu, r), cb = logprobs(*cpu, r);
    ASSERT_EQ(g.size(), static_cast<size_t>(cuda::kLoraInGemvMaxRows - 1));
    ASSERT_TRUE(c.size() == g.size() && gb.size() == g.size() && cb.size() == g.size());
    for (size_t p = 0; p < g.size(); ++p) {
      gap_lora = std::max(gap_lora, std::fabs(g[p] - c[p]));
      gap_base = std::max(gap_base, std::fabs(gb[p] - cb[p]));
      moved = std::max(moved, std::fabs(c[p] - cb[p]));
    }
  }
  std::printf(
      "passes of a few tokens on the tensor cores: worst logprob gap to the cpu %.3e with "
      "adapters, "
      "%.3e without; the adapters move them up to %.3e\n",
      gap_lora, gap_base, moved);
  const double bound = std::max(3 * gap_base, 2e-3);
  EXPECT_LT(gap_lora, bound);
  EXPECT_GT(moved, 3 * bound);
}

CompletionOutput greedy(Engine& e, const std::string& lora) {
  std::vector<int32_t> p;
  for (int i = 0; i < 40; ++i) p.push_back(7 + 13 * i);
  return e.generate({{p, {.max_tokens = 8, .ignore_eos = true, .logprobs = 20}, lora}})
      .at(0)
      .outputs.at(0);
}

TEST_F(CudaLora, ReplacingFromDeviceTensorsEqualsReplacingFromHostOnes) {
  TempDir tmp;
  const TinyAdapter first{.rank = 8, .seed = 30}, second{.rank = 8, .seed = 31};
  first.write(tmp / "first");
  auto from_host = load(Device::Cuda);
  auto from_device = load(Device::Cuda);
  from_host->add_lora("x", tmp / "first");
  from_device->add_lora("x", tmp / "first");
  const CompletionOutput before = greedy(*from_device, "x");

  // The second adapter's factors: BF16 in host memory, and F32 on the device (rounded to bf16
  // there, which gives the same bits).
  std::vector<WeightTensor> host, device;
  std::vector<cuda::DeviceBuffer> buffers;
  const auto factors = second.factors();
  for (const auto& [name, bits] : factors) {
    host.push_back({name, "BF16", second.shape_of_tensor(name), bits.data()});
    std::vector<float> f(bits.size());
    for (size_t i = 0; i < bits.size(); ++i) f[i] = bf16_to_f32(bits[i]);
    buffers.push_back(cuda::to_device(std::span<const float>(f)));
    device.push_back(
        {name, "F32", second.shape_of_tensor(name), buffers.back().data(), Device::Cuda});
  }
  from_host->replace_lora("x", host);
  from_device->replace_lora("x", device);
  const CompletionOutput want = greedy(*from_host, "x");
  const CompletionOutput got = greedy(*from_device, "x");
  EXPECT_EQ(got.token_ids, want.token_ids);
  for (size_t t = 0; t < want.logprobs.size(); ++t)
    EXPECT_EQ(got.logprobs[t].top, want.logprobs[t].top) << "step " << t;
  EXPECT_NE(got.logprobs[0].top, before.logprobs[0].top);

  // A NaN in one factor: refused with its name, and the adapter keeps the factors it had.
  std::vector<float> poisoned(static_cast<size_t>(num_elements(device[5].shape)), 0.0f);
  poisoned[17] = NAN;
  cuda::DeviceBuffer bad = cuda::to_device(std::span<const float>(poisoned));
  std::vector<WeightTensor> with_nan = device;
  with_nan[5].data = bad.data();
  const std::string error = error_of([&] { from_device->replace_lora("x", with_nan); });
  EXPECT_NE(error.find(with_nan[5].name + ": holds a value that is not finite"), std::string::npos)
      << error;
  EXPECT_EQ(greedy(*from_device, "x").token_ids, want.token_ids);

  // Back to the first factors, from the device, and before the next step a refused replacement:
  // the pending one stays, and the next step gives the first tokens again.
  std::vector<WeightTensor> back;
  std::vector<cuda::DeviceBuffer> back_buffers;
  for (const auto& [name, bits] : first.factors()) {
    back_buffers.push_back(cuda::to_device(std::span<const uint16_t>(bits)));
    back.push_back(
        {name, "BF16", first.shape_of_tensor(name), back_buffers.back().data(), Device::Cuda});
  }
  from_device->replace_lora("x", back);
  EXPECT_NE(error_of([&] { from_device->replace_lora("x", with_nan); }), "");
  EXPECT_EQ(greedy(*from_device, "x").logprobs[0].top, before.logprobs[0].top);
}

}  // namespace
}  // namespace fp8llm::test
