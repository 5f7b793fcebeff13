// The quantizer against a slow element-by-element implementation of the definition, on every BF16
// and F16 bit pattern, sampled F32 patterns, rounding ties, edge tiles, zero tiles and bad input.
#include "quant/quantizer.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "quant/e4m3_table.h"
#include "quant_reference.h"

namespace fp8llm {
namespace {

using test::ref_quantize;
using test::ref_quantize_weight;
using test::ref_scale;
using test::ref_scale_divide;

HostTensor make_weight(DType dtype, int64_t n, int64_t k, const std::vector<float>& values) {
  HostTensor t(dtype, {n, k});
  for (int64_t i = 0; i < n * k; ++i) {
    if (dtype == DType::BF16) t.as<uint16_t>()[i] = f32_to_bf16(values[i]);
    if (dtype == DType::F16) t.as<uint16_t>()[i] = f32_to_f16(values[i]);
    if (dtype == DType::F32) t.as<float>()[i] = values[i];
  }
  return t;
}

// The float32 values a weight tensor holds.
std::vector<float> weight_values(const HostTensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  to_f32(t.dtype, t.bytes.data(), v.data(), v.size());
  return v;
}

void expect_matches_reference(Fp8Scheme scheme, const HostTensor& w, const std::string& label) {
  const int64_t n = w.shape[0], k = w.shape[1];
  const QuantizedTensor got = quantize_weight(scheme, w.view(), label);
  const auto want = ref_quantize_weight(scheme, weight_values(w), n, k);
  ASSERT_EQ(got.q.shape, (Shape{n, k}));
  ASSERT_EQ(got.q.dtype, DType::F8_E4M3);
  ASSERT_EQ(got.scale.shape, weight_scale_shape(scheme, n, k));
  ASSERT_EQ(got.scale.dtype, DType::F32);
  for (size_t i = 0; i < want.scale.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got.scale.as<float>()[i]),
              std::bit_cast<uint32_t>(want.scale[i]))
        << label << " scale " << i;
  }
  for (size_t i = 0; i < want.q.size(); ++i) {
    ASSERT_EQ(got.q.as<uint8_t>()[i], want.q[i])
        << label << " element [" << i / k << ", " << i % k << "] value " << weight_values(w)[i];
  }
}

TEST(Quantizer, EveryBf16PatternMatchesTheDefinition) {
  // All 65536 patterns (non-finite ones replaced by zero), in rows and tiles of every magnitude.
  for (int64_t k : {128, 256, 100}) {
    const int64_t n = 65536 / k + 1;
    HostTensor w(DType::BF16, {n, k});
    for (int64_t i = 0; i < n * k; ++i) {
      const auto bits = static_cast<uint16_t>(i & 0xFFFF);
      const bool finite = (bits & 0x7F80) != 0x7F80;
      w.as<uint16_t>()[i] = finite ? bits : 0;
    }
    expect_matches_reference(Fp8Scheme::Row, w, "bf16 row k=" + std::to_string(k));
    expect_matches_reference(Fp8Scheme::Block, w, "bf16 block k=" + std::to_string(k));
  }
}

TEST(Quantizer, EveryF16PatternMatchesTheDefinition) {
  const int64_t n = 512, k = 128;
  HostTensor w(DType::F16, {n, k});
  for (int64_t i = 0; i < n * k; ++i) {
    const auto bits = static_cast<uint16_t>(i);
    w.as<uint16_t>()[i] = (bits & 0x7C00) != 0x7C00 ? bits : 0;
  }
  expect_matches_reference(Fp8Scheme::Row, w, "f16 row");
  expect_matches_reference(Fp8Scheme::Block, w, "f16 block");
}

TEST(Quantizer, RandomF32WeightsOfOddShapes) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-40, 40);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{300, 200}, {1, 1}, {129, 127}, {7, 1000}}) {
    std::vector<float> v(static_cast<size_t>(n * k));
    for (auto& x : v) x = std::ldexp(normal(rng), exponent(rng) / 8);
    for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
      const HostTensor w = make_weight(dtype, n, k, v);
      const std::string label =
          std::string(dtype_name(dtype)) + " " + std::to_string(n) + "x" + std::to_string(k);
      expect_matches_reference(Fp8Scheme::Row, w, label + " row");
      expect_matches_reference(Fp8Scheme::Block, w, label + " block");
    }
  }
}

TEST(Quantizer, BothScaleRules) {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  const int64_t n = 200, k = 300;
  std::vector<float> v(static_cast<size_t>(n * k));
  for (auto& x : v) x = normal(rng);
  const HostTensor w = make_weight(DType::BF16, n, k, v);
  const std::vector<float> values = weight_values(w);
  for (Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    const auto by_division = ref_quantize_weight(scheme, values, n, k, ref_scale_divide);
    const QuantizedTensor got = quantize_weight(scheme, w.view(), "w", Fp8ScaleRule::Divide);
    for (size_t i = 0; i < by_division.scale.size(); ++i) {
      ASSERT_EQ(got.scale.as<float>()[i], by_division.scale[i]);
    }
    for (size_t i = 0; i < by_division.q.size(); ++i) {
      ASSERT_EQ(got.q.as<uint8_t>()[i], by_division.q[i]);
    }
    // The activation quantizer follows the rule it is given, too.
    std::vector<uint8_t> q(static_cast<size_t>(k));
    std::vector<float> s(static_cast<size_t>(num_elements(activation_scale_shape(scheme, 1, k))));
    const std::vector<float> row(values.begin(), values.begin() + k);
    quantize_activations(scheme, row.data(), 1, k, q.data(), s.data(), Fp8ScaleRule::Divide);
    const auto want = ref_quantize_weight(scheme, row, 1, k, ref_scale_divide);
    for (size_t i = 0; i < s.size(); ++i) ASSERT_EQ(s[i], want.scale[i]);
    for (int64_t c = 0; c < k; ++c) ASSERT_EQ(q[c], want.q[c]);
  }
}

// Activations quantized in 128-column groups whose amax is 448 get scale 1, so each element's
// code is e4m3_rne(clamp(x)) of the value itself: this checks the encoder on chosen values.
std::vector<uint8_t> encode_with_unit_scale(const std::vector<float>& values) {
  const int64_t per_group = 127;
  const int64_t groups = (static_cast<int64_t>(values.size()) + per_group - 1) / per_group;
  std::vector<float> x(static_cast<size_t>(groups * 128), 0.0f);
  for (size_t i = 0; i < values.size(); ++i) x[i / per_group * 128 + 1 + i % per_group] = values[i];
  for (int64_t g = 0; g < groups; ++g) x[g * 128] = 448.0f;
  std::vector<uint8_t> q(x.size());
  std::vector<float> scales(static_cast<size_t>(groups));
  quantize_activations(Fp8Scheme::Block, x.data(), 1, groups * 128, q.data(), scales.data());
  for (float s : scales) EXPECT_EQ(s, 1.0f);
  std::vector<uint8_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = q[i / per_group * 128 + 1 + i % per_group];
  return out;
}

TEST(Quantizer, RoundsTiesToEvenAtEveryStep) {
  // Each midpoint between neighbouring e4m3 values, and the floats just either side of it.
  std::vector<float> values;
  const auto& table = e4m3_values();
  for (int code = 0; code < 0x7E; ++code) {
    const float mid = (table[code] + table[code + 1]) / 2;  // exact in float32
    for (float v : {std::nextafter(mid, 0.0f), mid, std::nextafter(mid, 1000.0f)}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  for (int code = 0; code <= 0x7E; ++code) {
    values.push_back(table[code]);
    values.push_back(-table[code]);
  }
  values.push_back(1e-40f);  // float32 subnormal
  values.push_back(-1e-40f);
  values.push_back(-0.0f);
  const auto got = encode_with_unit_scale(values);
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(got[i], f32_to_e4m3(values[i])) << "value " << values[i];
  }
  EXPECT_EQ(got[values.size() - 1], 0x80);  // -0 keeps its sign
}

TEST(Quantizer, SampledFloat32PatternsMatchTheEncoder) {
  // Every 61st float32 pattern of magnitude up to 448, both signs.
  std::vector<float> values;
  const uint32_t max_bits = std::bit_cast<uint32_t>(448.0f);
  for (uint32_t bits = 0; bits <= max_bits; bits += 61) {
    values.push_back(std::bit_cast<float>(bits));
    values.push_back(-std::bit_cast<float>(bits));
  }
  const auto got = encode_with_unit_scale(values);
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(got[i], f32_to_e4m3(values[i])) << "value " << values[i];
  }
}

TEST(Quantizer, ZeroRowsAndTilesGetScaleOne) {
  const int64_t n = 260, k = 300;  // partial tiles on both edges
  std::vector<float> v(static_cast<size_t>(n * k), 0.0f);
  for (int64_t r = 0; r < 128; ++r) {
    for (int64_t c = 128; c < 256; ++c) v[r * k + c] = 0.01f * static_cast<float>(r - c);
  }
  v[259 * k + 299] = -3.0f;  // the 4x44 corner tile
  const HostTensor w = make_weight(DType::BF16, n, k, v);
  const QuantizedTensor block = quantize_weight(Fp8Scheme::Block, w.view(), "w");
  ASSERT_EQ(block.scale.shape, (Shape{3, 3}));
  const float* s = block.scale.as<float>();
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(s[1], ref_scale(bf16_to_f32(f32_to_bf16(0.01f * -255.0f)) * -1.0f));
  EXPECT_EQ(s[2], 1.0f);
  EXPECT_EQ(s[3], 1.0f);
  EXPECT_EQ(s[8], ref_scale(3.0f));
  EXPECT_EQ(block.q.as<uint8_t>()[259 * k + 299], 0xFE);  // -448
  EXPECT_EQ(block.q.as<uint8_t>()[0], 0x00);
  expect_matches_reference(Fp8Scheme::Block, w, "zero tiles");

  const QuantizedTensor row = quantize_weight(Fp8Scheme::Row, w.view(), "w");
  EXPECT_EQ(row.scale.as<float>()[200], 1.0f);
  EXPECT_EQ(row.scale.as<float>()[259], ref_scale(3.0f));
  expect_matches_reference(Fp8Scheme::Row, w, "zero rows");
}

TEST(Quantizer, TinyAmaxWhoseScaleUnderflows) {
  // amax = 2^-149: the scale amax / 448 rounds to 0 and the definition divides by zero, giving
  // +-448 (clamped infinities) and NaN for 0 / 0.
  std::vector<float> v = {1e-45f, -1e-45f, 0.0f, 1e-45f};
  const HostTensor w = make_weight(DType::F32, 1, 4, v);
  const QuantizedTensor q = quantize_weight(Fp8Scheme::Row, w.view(), "w");
  EXPECT_EQ(q.scale.as<float>()[0], 0.0f);
  EXPECT_EQ(q.q.as<uint8_t>()[0], 0x7E);
  EXPECT_EQ(q.q.as<uint8_t>()[1], 0xFE);
  EXPECT_EQ(q.q.as<uint8_t>()[2] & 0x7F, 0x7F);
}

TEST(Quantizer, ValuesThatClamp) {
  // When the scale rounds down, amax / scale exceeds 448 slightly (with true-quotient scales this
  // is common): the clamp keeps it at the largest code instead of letting it round away.
  for (Fp8ScaleRule rule : {Fp8ScaleRule::Divide, Fp8ScaleRule::MultiplyByReciprocal}) {
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(0.5f, 2.0f);
    int clamped = 0;
    for (int i = 0; i < 2000; ++i) {
      const float amax = u(rng) * std::ldexp(1.0f, i % 60 - 30);
      const float s = rule == Fp8ScaleRule::Divide ? ref_scale_divide(amax) : ref_scale(amax);
      if (amax / s > 448.0f) ++clamped;
      float x[2] = {amax, -amax};
      uint8_t q[2];
      float scale;
      quantize_activations(Fp8Scheme::Row, x, 1, 2, q, &scale, rule);
      ASSERT_EQ(scale, s);
      ASSERT_EQ(q[0], 0x7E) << amax;
      ASSERT_EQ(q[1], 0xFE) << amax;
    }
    if (rule == Fp8ScaleRule::Divide) {
      EXPECT_GT(clamped, 0);  // the case did occur
    }
  }
}

TEST(Quantizer, ActivationsRowAndBlock) {
  const int64_t t = 5, k = 300;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(t * k));
  for (auto& v : x) v = normal(rng);
  for (int64_t c = 0; c < k; ++c) x[2 * k + c] = 0.0f;   // an all-zero row
  for (int64_t c = 128; c < 256; ++c) x[3 * k + c] = 0;  // an all-zero group
  x[4 * k + 7] = 1e30f;
  x[4 * k + 8] = 1e-30f;
  x[4 * k + 299] = -1e-42f;
  for (Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    std::vector<uint8_t> q(x.size());
    std::vector<float> scales(
        static_cast<size_t>(num_elements(activation_scale_shape(scheme, t, k))));
    quantize_activations(scheme, x.data(), t, k, q.data(), scales.data());
    // An activation row is a weight row (row) or a row of 1x128 tiles (block): the reference of
    // weights with one row at a time.
    const int64_t groups = static_cast<int64_t>(scales.size()) / t;
    for (int64_t r = 0; r < t; ++r) {
      const std::vector<float> row(x.begin() + r * k, x.begin() + (r + 1) * k);
      const auto want = ref_quantize_weight(scheme, row, 1, k);
      for (int64_t g = 0; g < groups; ++g) ASSERT_EQ(scales[r * groups + g], want.scale[g]);
      for (int64_t c = 0; c < k; ++c) ASSERT_EQ(q[r * k + c], want.q[c]) << r << "," << c;
    }
    EXPECT_EQ(scales[2 * groups], 1.0f);
    if (scheme == Fp8Scheme::Block) {
      EXPECT_EQ(scales[3 * groups + 1], 1.0f);
    }
  }
}

TEST(Quantizer, NonFiniteActivationsPropagate) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // Row 0: a NaN makes amax and every code NaN. Row 1: an infinity makes the scale infinite, so
  // finite values become zero and the infinity NaN. Row 2 is untouched by its neighbours.
  std::vector<float> x = {1.0f, nan, 2.0f, 3.0f, -inf, -0.5f, 4.0f, 0.25f, 1.0f};
  std::vector<uint8_t> q(9);
  std::vector<float> s(3);
  quantize_activations(Fp8Scheme::Row, x.data(), 3, 3, q.data(), s.data());
  EXPECT_TRUE(std::isnan(s[0]));
  for (int c = 0; c < 3; ++c) EXPECT_EQ(q[c] & 0x7F, 0x7F) << c;
  EXPECT_EQ(s[1], inf);
  EXPECT_EQ(q[3], 0x00);
  EXPECT_EQ(q[4] & 0x7F, 0x7F);
  EXPECT_EQ(q[5], 0x80);
  EXPECT_EQ(s[2], ref_scale(4.0f));
  EXPECT_EQ(q[6], 0x7E);
  EXPECT_EQ(q[7], ref_quantize(0.25f, s[2]));
}

TEST(Quantizer, DequantizeAppliesTheScales) {
  const int64_t n = 130, k = 260;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n * k));
  for (auto& x : v) x = normal(rng);
  const HostTensor w = make_weight(DType::F32, n, k, v);
  for (Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    const QuantizedTensor q = quantize_weight(scheme, w.view(), "w");
    std::vector<float> out(v.size());
    dequantize_weight(scheme, q.q.as<uint8_t>(), q.scale.as<float>(), n, k, out.data());
    const int64_t gk = q.scale.shape[1];
    double err = 0, norm = 0;
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < k; ++c) {
        const float s = scheme == Fp8Scheme::Row ? q.scale.as<float>()[r]
                                                 : q.scale.as<float>()[(r / 128) * gk + c / 128];
        const float want = e4m3_to_f32(q.q.as<uint8_t>()[r * k + c]) * s;
        ASSERT_EQ(out[r * k + c], want);
        err += (out[r * k + c] - v[r * k + c]) * (out[r * k + c] - v[r * k + c]);
        norm += v[r * k + c] * v[r * k + c];
      }
    }
    EXPECT_LT(std::sqrt(err / norm), 0.05);  // e4m3 keeps about 3 significant bits
  }
}

std::string error_of(Fp8Scheme scheme, const HostTensor& w, const std::string& name) {
  try {
    quantize_weight(scheme, w.view(), name);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Quantizer, NanWeightIsAnErrorNamingTheTensor) {
  const std::string name = "model.layers.0.mlp.up_proj.weight";
  std::vector<float> v(40 * 300, 0.5f);
  v[3 * 300 + 17] = std::numeric_limits<float>::quiet_NaN();
  for (DType dtype : {DType::BF16, DType::F16, DType::F32}) {
    const HostTensor w = make_weight(dtype, 40, 300, v);
    for (Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
      EXPECT_EQ(error_of(scheme, w, name),
                name + ": contains NaN at [3, 17]; refusing to quantize");
    }
  }
}

TEST(Quantizer, InfWeightIsAnErrorAndTheFirstBadElementIsNamed) {
  // Non-finite values in several rows and tiles: the error names the first in row-major order,
  // whichever thread finds which.
  const int64_t n = 600, k = 256;
  std::vector<float> v(static_cast<size_t>(n * k), -1.0f);
  v[590 * k + 3] = std::numeric_limits<float>::quiet_NaN();
  v[300 * k + 200] = -std::numeric_limits<float>::infinity();
  v[300 * k + 201] = std::numeric_limits<float>::quiet_NaN();
  v[450 * k + 0] = std::numeric_limits<float>::infinity();
  const HostTensor w = make_weight(DType::BF16, n, k, v);
  for (Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    EXPECT_EQ(error_of(scheme, w, "lm.w"),
              "lm.w: contains Inf at [300, 200]; refusing to quantize");
  }
}

TEST(Quantizer, RejectsBadTensors) {
  HostTensor three_d(DType::BF16, {2, 3, 4});
  EXPECT_EQ(error_of(Fp8Scheme::Row, three_d, "a.weight"),
            "a.weight: cannot quantize a tensor of shape [2, 3, 4]; FP8 weights must be 2-D");
  HostTensor ints(DType::I32, {2, 3});
  EXPECT_EQ(error_of(Fp8Scheme::Block, ints, "b.weight"),
            "b.weight: cannot quantize I32 weights; expected BF16, F16 or F32");
  HostTensor fp8(DType::F8_E4M3, {2, 3});
  EXPECT_EQ(error_of(Fp8Scheme::Row, fp8, "c.weight"),
            "c.weight: cannot quantize F8_E4M3 weights; expected BF16, F16 or F32");
  HostTensor short_bytes(DType::BF16, {2, 3});
  TensorView view = short_bytes.view();
  view.nbytes = 10;
  try {
    std::vector<uint8_t> q(6);
    std::vector<float> s(2);
    quantize_weight(Fp8Scheme::Row, view, q.data(), s.data(), "d.weight");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "d.weight: 10 bytes for a BF16 tensor of shape [2, 3] (expected 12)");
  }
  HostTensor negative(DType::BF16, {});
  negative.shape = {-1, 4};
  EXPECT_EQ(error_of(Fp8Scheme::Row, negative, "e.weight"), "e.weight: invalid shape [-1, 4]");
}

TEST(Quantizer, EmptyWeights) {
  HostTensor w(DType::BF16, {0, 5});
  const QuantizedTensor q = quantize_weight(Fp8Scheme::Block, w.view(), "w");
  EXPECT_EQ(q.scale.shape, (Shape{0, 1}));
  HostTensor w2(DType::BF16, {3, 0});
  const QuantizedTensor q2 = quantize_weight(Fp8Scheme::Row, w2.view(), "w");
  ASSERT_EQ(q2.scale.shape, (Shape{3, 1}));
  EXPECT_EQ(q2.scale.as<float>()[1], 1.0f);
}

}  // namespace
}  // namespace fp8llm
