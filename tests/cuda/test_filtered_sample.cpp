// Sampling with top-k, top-p and min-p on the device: every draw equals the host's definition
// (tests/sampling_reference.h, which the host sampler is also held to) on a 128,256-token row
// with ties, except where the draw lies within float rounding of a boundary between two tokens,
// both where the kept tokens are gathered and sorted in shared memory and where they are not;
// the log-probability is the raw log-softmax. Skipped without a GPU.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <vector>

#include "backend/cuda/kernels/filtered_sample.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "model/top_token.h"
#include "sampling_reference.h"

namespace fp8llm::cuda {
namespace {

class FilteredSample : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// A trained model's shape (a few likely tokens, a long tail) with ties (values on a 1/64 grid).
std::vector<float> peaked_logits(size_t n) {
  std::mt19937_64 rng(11);
  std::normal_distribution<float> noise(0.0f, 1.5f);
  std::vector<float> logits(n);
  for (float& v : logits) v = std::round(noise(rng) * 64.0f) / 64.0f;
  for (size_t i = 0; i < 12; ++i) logits[i * 7919 % n] = 9.0f - 0.25f * static_cast<float>(i / 2);
  return logits;
}

TEST_F(FilteredSample, DrawsEqualTheDefinition) {
  const std::vector<float> logits = peaked_logits(128256);
  const DeviceBuffer device_logits = to_device(std::span<const float>(logits));
  DeviceBuffer out(2 * sizeof(float));
  const SampleFilter cases[] = {
      {.temperature = 0.8f, .top_k = 40},
      {.temperature = 0.7f, .top_p = 0.9f},
      {.temperature = 1.0f, .min_p = 0.05f},
      {.temperature = 0.9f, .top_k = 3000, .top_p = 0.8f, .min_p = 0.001f},
      {.temperature = 2.0f, .top_p = 0.5f},   // flat: a nucleus of tens of thousands
      {.temperature = 1.0f, .top_p = 0.99f},  // nearly all: the path that gathers nothing
      {.temperature = 1.0f, .top_k = 5, .top_p = 0.99f},
      {.temperature = 1.0f, .top_k = 1},
      {.temperature = 0.5f, .top_k = 200000},  // more than the vocabulary: no top-k
  };
  int compared = 0;
  for (const SampleFilter& f : cases) {
    SCOPED_TRACE(::testing::Message() << "T " << f.temperature << " top_k " << f.top_k << " top_p "
                                      << f.top_p << " min_p " << f.min_p);
    const test::KeptTokens kept =
        test::reference_kept(logits, f.temperature, static_cast<int>(f.top_k), f.top_p, f.min_p);
    for (int k = 0; k < 64; ++k) {
      const double u = (k + 0.37) / 64.0;
      launch_filtered_sample(device_logits.as<float>(), static_cast<int64_t>(logits.size()), f, u,
                             out.as<int32_t>(), out.as<float>() + 1, nullptr);
      CUDA_CHECK(cudaDeviceSynchronize());
      int32_t id = 0;
      float logprob = 0;
      out.download(&id, sizeof(id));
      CUDA_CHECK(cudaMemcpy(&logprob, out.as<float>() + 1, sizeof(float), cudaMemcpyDeviceToHost));
      EXPECT_NEAR(logprob, log_softmax_at(logits, id), 1e-5);
      const double r = u * kept.total;
      if (kept.near_boundary(r, 1e-6)) continue;
      ++compared;
      EXPECT_EQ(id, kept.pick(r)) << "u " << u << ", " << kept.ids.size() << " kept";
    }
  }
  EXPECT_GT(compared, 400);
}

// Rows shorter than the block, one token, and a few thousand: the same definition.
TEST_F(FilteredSample, SmallVocabularies) {
  DeviceBuffer out(2 * sizeof(float));
  const SampleFilter cases[] = {{.temperature = 0.8f, .top_k = 3},
                                {.temperature = 1.0f, .top_p = 0.7f},
                                {.temperature = 1.2f, .top_k = 50, .top_p = 0.9f, .min_p = 0.02f}};
  for (const size_t n : {size_t{1}, size_t{7}, size_t{1000}, size_t{5000}}) {
    const std::vector<float> logits = peaked_logits(n);
    const DeviceBuffer device_logits = to_device(std::span<const float>(logits));
    for (const SampleFilter& f : cases) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " T " << f.temperature << " top_k "
                                        << f.top_k << " top_p " << f.top_p);
      const test::KeptTokens kept =
          test::reference_kept(logits, f.temperature, static_cast<int>(f.top_k), f.top_p, f.min_p);
      for (int k = 0; k < 16; ++k) {
        const double u = (k + 0.21) / 16.0;
        launch_filtered_sample(device_logits.as<float>(), static_cast<int64_t>(n), f, u,
                               out.as<int32_t>(), out.as<float>() + 1, nullptr);
        CUDA_CHECK(cudaDeviceSynchronize());
        int32_t id = -1;
        out.download(&id, sizeof(id));
        const double r = u * kept.total;
        if (kept.near_boundary(r, 1e-6)) continue;
        EXPECT_EQ(id, kept.pick(r)) << "u " << u;
      }
    }
  }
}

// Time per draw on a Llama-3-sized row (printed for docs/PERFORMANCE.md; not a bound).
TEST_F(FilteredSample, TimePerDraw) {
  const std::vector<float> logits = peaked_logits(128256);
  const DeviceBuffer device_logits = to_device(std::span<const float>(logits));
  DeviceBuffer out(2 * sizeof(float));
  const SampleFilter cases[] = {{.temperature = 0.8f, .top_k = 50},
                                {.temperature = 0.8f, .top_p = 0.9f},
                                {.temperature = 0.8f, .top_p = 0.95f, .min_p = 0.05f}};
  for (const SampleFilter& f : cases) {
    const int reps = 50;
    launch_filtered_sample(device_logits.as<float>(), 128256, f, 0.5, out.as<int32_t>(),
                           out.as<float>() + 1, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i)
      launch_filtered_sample(device_logits.as<float>(), 128256, f, (i + 0.5) / reps,
                             out.as<int32_t>(), out.as<float>() + 1, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
        reps;
    std::printf("filtered sample (T %.1f, top_k %lld, top_p %.2f, min_p %.2f): %.1f us per draw\n",
                f.temperature, static_cast<long long>(f.top_k), f.top_p, f.min_p, us);
  }
}

}  // namespace
}  // namespace fp8llm::cuda
