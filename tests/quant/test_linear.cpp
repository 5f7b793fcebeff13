// The CPU linear layers against float64 sums of the dequantized operands.
#include "backend/cpu/linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "quant/quantizer.h"
#include "test_util.h"

namespace fp8llm {
namespace {

struct Problem {
  int64_t t, k, n;
  std::vector<float> x, w, bias;
};

Problem random_problem(int64_t t, int64_t k, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Problem p{t, k, n, {}, {}, {}};
  p.x.resize(static_cast<size_t>(t * k));
  p.w.resize(static_cast<size_t>(n * k));
  p.bias.resize(static_cast<size_t>(n));
  for (auto& v : p.x) v = 3.0f * normal(rng);
  for (auto& v : p.w) v = 0.05f * normal(rng);
  for (auto& v : p.bias) v = normal(rng);
  return p;
}

// y[t, n] = sum_k a[t, k] * b[n, k] (+ bias[n]) in float64, rounded to float at the end.
std::vector<float> reference_product(const std::vector<float>& a, const std::vector<float>& b,
                                     int64_t t, int64_t k, int64_t n, const float* bias) {
  std::vector<float> y(static_cast<size_t>(t * n));
  for (int64_t i = 0; i < t; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (int64_t c = 0; c < k; ++c) acc += static_cast<double>(a[i * k + c]) * b[j * k + c];
      y[i * n + j] = static_cast<float>(acc);
    }
  }
  return y;
}

// Checks y against the float64 product: each output within the error bound of a float32 sum of
// k + 1 terms (k products, each rounded once, and the bias), (k + 2) * 2^-24 * sum |term|, and
// the whole within 1e-6 relative L2 when there are enough outputs for one unlucky cancellation
// not to dominate.
void expect_close_to_product(const std::vector<float>& y, const std::vector<float>& a,
                             const std::vector<float>& b, int64_t t, int64_t k, int64_t n,
                             const float* bias) {
  const std::vector<float> want = reference_product(a, b, t, k, n, bias);
  for (int64_t i = 0; i < t; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double magnitude = bias ? std::fabs(bias[j]) : 0.0;
      for (int64_t c = 0; c < k; ++c) magnitude += std::fabs(double{a[i * k + c]} * b[j * k + c]);
      const double bound = static_cast<double>(k + 2) * std::ldexp(1.0, -24) * magnitude + 1e-30;
      ASSERT_LE(std::fabs(double{y[i * n + j]} - want[i * n + j]), bound) << i << ", " << j;
    }
  }
  if (t * n >= 64) {
    EXPECT_LT(test::rel_l2(y, want), 1e-6);
  }
}

std::vector<float> dequantized_activations(Fp8Scheme scheme, const std::vector<float>& x, int64_t t,
                                           int64_t k) {
  std::vector<uint8_t> q(x.size());
  std::vector<float> s(static_cast<size_t>(num_elements(activation_scale_shape(scheme, t, k))));
  quantize_activations(scheme, x.data(), t, k, q.data(), s.data());
  // An activation row is dequantized like a one-row weight whose tiles are 1x128.
  std::vector<float> out(x.size());
  const int64_t groups = static_cast<int64_t>(s.size()) / std::max<int64_t>(t, 1);
  for (int64_t r = 0; r < t; ++r) {
    dequantize_weight(scheme, q.data() + r * k, s.data() + r * groups, 1, k, out.data() + r * k);
  }
  return out;
}

class LinearFp8
    : public ::testing::TestWithParam<std::tuple<Fp8Scheme, int64_t, int64_t, int64_t>> {};

TEST_P(LinearFp8, MatchesTheDefinition) {
  const auto [scheme, t, k, n] = GetParam();
  const Problem p = random_problem(t, k, n, static_cast<uint32_t>(t * 1000 + k * 10 + n));
  HostTensor w(DType::F32, {n, k});
  std::copy(p.w.begin(), p.w.end(), w.as<float>());
  const QuantizedTensor wq = quantize_weight(scheme, w.view(), "w");
  std::vector<float> wd(p.w.size());
  dequantize_weight(scheme, wq.q.as<uint8_t>(), wq.scale.as<float>(), n, k, wd.data());
  const std::vector<float> xd = dequantized_activations(scheme, p.x, t, k);

  for (const float* bias : {static_cast<const float*>(nullptr), p.bias.data()}) {
    std::vector<float> y(static_cast<size_t>(t * n), -7.0f);
    cpu::linear_fp8(scheme, p.x.data(), t, k, wq.q.as<uint8_t>(), wq.scale.as<float>(), n, bias,
                    y.data());
    expect_close_to_product(y, xd, wd, t, k, n, bias);
    // Far from an unquantized product: the quantization is really applied.
    if (k >= 64) {
      EXPECT_GT(test::rel_l2(y, reference_product(p.x, p.w, t, k, n, bias)), 1e-3);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearFp8,
                         ::testing::Combine(::testing::Values(Fp8Scheme::Row, Fp8Scheme::Block),
                                            ::testing::Values(1, 37, 100),
                                            ::testing::Values(64, 200, 300, 600),
                                            ::testing::Values(1, 16, 45, 192)));

TEST(LinearFp8, PrequantizedActivationsGiveTheSameResult) {
  const int64_t t = 9, k = 260, n = 33;
  const Problem p = random_problem(t, k, n, 99);
  HostTensor w(DType::F32, {n, k});
  std::copy(p.w.begin(), p.w.end(), w.as<float>());
  for (Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    const QuantizedTensor wq = quantize_weight(scheme, w.view(), "w");
    std::vector<uint8_t> xq(p.x.size());
    std::vector<float> xs(static_cast<size_t>(num_elements(activation_scale_shape(scheme, t, k))));
    quantize_activations(scheme, p.x.data(), t, k, xq.data(), xs.data());
    std::vector<float> a(static_cast<size_t>(t * n)), b(a.size());
    cpu::linear_fp8(scheme, p.x.data(), t, k, wq.q.as<uint8_t>(), wq.scale.as<float>(), n,
                    p.bias.data(), a.data());
    cpu::linear_fp8_quantized(scheme, xq.data(), xs.data(), t, k, wq.q.as<uint8_t>(),
                              wq.scale.as<float>(), n, p.bias.data(), b.data());
    EXPECT_EQ(a, b);
  }
}

TEST(LinearDense, Bf16F16AndF32Weights) {
  for (auto [t, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 256, 1024},
                         {37, 200, 45},
                         {100, 513, 17},
                         {6, 1, 3}}) {
    const Problem p = random_problem(t, k, n, 5);
    std::vector<uint16_t> wb(p.w.size()), wh(p.w.size());
    std::vector<float> wb_values(p.w.size()), wh_values(p.w.size());
    for (size_t i = 0; i < p.w.size(); ++i) {
      wb[i] = f32_to_bf16(p.w[i]);
      wh[i] = f32_to_f16(p.w[i]);
      wb_values[i] = bf16_to_f32(wb[i]);
      wh_values[i] = f16_to_f32(wh[i]);
    }
    std::vector<float> y(static_cast<size_t>(t * n));
    cpu::linear_bf16(p.x.data(), t, k, wb.data(), n, p.bias.data(), y.data());
    expect_close_to_product(y, p.x, wb_values, t, k, n, p.bias.data());
    cpu::linear_f16(p.x.data(), t, k, wh.data(), n, nullptr, y.data());
    expect_close_to_product(y, p.x, wh_values, t, k, n, nullptr);
    cpu::linear_f32(p.x.data(), t, k, p.w.data(), n, p.bias.data(), y.data());
    expect_close_to_product(y, p.x, p.w, t, k, n, p.bias.data());
  }
}

TEST(LinearDense, SumIsPlainFloat32InKOrder) {
  // Exact expectations: 1 + 2^-24 + 2^-24 + ... in float32, left to right, stays 1.
  const int64_t k = 600;
  std::vector<float> x(k, 1.0f), w(k, std::ldexp(1.0f, -24));
  w[0] = 1.0f;
  float y = 0;
  cpu::linear_f32(x.data(), 1, k, w.data(), 1, nullptr, &y);
  EXPECT_EQ(y, 1.0f);
}

TEST(LinearDense, EmptyInnerDimensionGivesTheBias) {
  const float bias[3] = {1.0f, -2.0f, 0.5f};
  std::vector<float> y(6, 9.0f);
  cpu::linear_f32(nullptr, 2, 0, nullptr, 3, bias, y.data());
  EXPECT_EQ(y, (std::vector<float>{1.0f, -2.0f, 0.5f, 1.0f, -2.0f, 0.5f}));
  cpu::linear_f32(nullptr, 2, 0, nullptr, 3, nullptr, y.data());
  EXPECT_EQ(y, std::vector<float>(6, 0.0f));
}

}  // namespace
}  // namespace fp8llm
