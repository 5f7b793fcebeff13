// Kernels launched as programmatic dependents (runtime/dependent_launch.h) may start before the
// kernel ahead of them on the stream has finished, yet must read what it wrote. A chain as the
// decode step has one: the SiLU gating writes a large activation, the quantizer (a dependent that
// waits first) reads its last row, and the FP8 GEMV (a dependent that requests its weights before
// it waits) reads the codes the quantizer writes last. The outputs are poisoned before each run;
// every run must equal, bit for bit, the same kernels run with a full synchronization between.
// Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/kernels/fp8_gemv.h"
#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/kernels/fused_quant.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/stream.h"

namespace fp8llm::cuda {
namespace {

class DependentLaunch : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

std::vector<float> random_floats(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> out(count);
  for (float& v : out) v = normal(rng);
  return out;
}

TEST_F(DependentLaunch, EachKernelReadsWhatTheOneBeforeItWrote) {
  // Rows enough that the kernels before the GEMV take several waves of the card.
  const int64_t rows = 4096, k = 4096, n = 4096;
  const DeviceBuffer gate = to_device(random_floats(static_cast<size_t>(rows * k), 1));
  const DeviceBuffer up = to_device(random_floats(static_cast<size_t>(rows * k), 2));
  DeviceBuffer gated(static_cast<size_t>(rows * k) * sizeof(float));
  DeviceBuffer fused_q(static_cast<size_t>(rows * k));
  DeviceBuffer fused_s(static_cast<size_t>(rows) * sizeof(float));
  DeviceBuffer xq(static_cast<size_t>(rows * k));
  DeviceBuffer xs(static_cast<size_t>(rows) * sizeof(float));
  DeviceBuffer w_bf16(static_cast<size_t>(n * k) * 2);
  DeviceBuffer wq(static_cast<size_t>(n * k));
  DeviceBuffer ws(static_cast<size_t>(n) * sizeof(float));
  DeviceBuffer flag(sizeof(int));
  DeviceBuffer y(static_cast<size_t>(n) * sizeof(float));
  Stream stream;
  const cudaStream_t s = stream.get();
  launch_fill_uniform_bf16(w_bf16.as<__nv_bfloat16>(), n * k, 7, 0.05f, s);
  launch_quantize_weight(Fp8Scheme::Row, w_bf16.as<__nv_bfloat16>(), n, k, wq.as<uint8_t>(),
                         ws.as<float>(), 0, flag.as<int>(), s);
  const auto run = [&](bool synchronize_between) {
    // Poison: 0x7f is an e4m3 NaN, and NaN floats everywhere else.
    CUDA_CHECK(cudaMemsetAsync(gated.data(), 0xff, gated.size(), s));
    CUDA_CHECK(cudaMemsetAsync(xq.data(), 0x7f, xq.size(), s));
    CUDA_CHECK(cudaMemsetAsync(xs.data(), 0xff, xs.size(), s));
    CUDA_CHECK(cudaMemsetAsync(y.data(), 0xff, y.size(), s));
    const auto between = [&] {
      if (synchronize_between) CUDA_CHECK(cudaStreamSynchronize(s));
    };
    launch_silu_mul_quantize(gate.as<float>(), up.as<float>(), rows, k, gated.as<float>(),
                             {.scheme = Fp8Scheme::Row,
                              .q = fused_q.as<uint8_t>(),
                              .s1 = fused_s.as<float>(),
                              .s2 = nullptr,
                              .rows_lt = rows},
                             s);
    between();
    launch_quantize_activations(Fp8Scheme::Row, gated.as<float>(), rows, k, xq.as<uint8_t>(),
                                xs.as<float>(), s);
    between();
    Fp8GemvArgs a;
    a.scheme = Fp8Scheme::Row;
    a.xq = xq.as<uint8_t>() + (rows - 1) * k;  // the row written last
    a.xs = xs.as<float>() + (rows - 1);
    a.m = 1;
    a.wq = wq.as<uint8_t>();
    a.ws = ws.as<float>();
    a.n = n;
    a.k = k;
    a.y_f32 = y.as<float>();
    a.ldy = n;
    launch_fp8_gemv(a, s);
    CUDA_CHECK(cudaStreamSynchronize(s));
    return to_host<float>(y, static_cast<size_t>(n));
  };
  const std::vector<float> want = run(true);
  for (const float v : want) ASSERT_TRUE(std::isfinite(v));
  for (int trial = 0; trial < 20; ++trial) {
    const std::vector<float> got = run(false);
    ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
        << "trial " << trial;
  }
}

}  // namespace
}  // namespace fp8llm::cuda
