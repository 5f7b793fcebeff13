// RoPE frequencies (default and Llama-3 scaling) against the formulas evaluated in double, and
// the rotation against a direct double-precision version of transformers' apply_rotary_pos_emb.
#include "backend/cpu/rope.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <numbers>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"

namespace fp8llm::cpu {
namespace {

RopeParams default_rope(double theta) {
  RopeParams p;
  p.theta = theta;
  return p;
}

RopeParams llama3_rope(double theta, double factor, double low, double high, int64_t original) {
  RopeParams p;
  p.type = RopeParams::Type::Llama3;
  p.theta = theta;
  p.factor = factor;
  p.low_freq_factor = low;
  p.high_freq_factor = high;
  p.original_max_position_embeddings = original;
  return p;
}

std::vector<double> default_inv_freq_f64(double theta, int64_t dim) {
  std::vector<double> f(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) f[i] = std::pow(theta, -2.0 * i / dim);
  return f;
}

// The Llama-3 rule, in double: keep short wavelengths, divide long ones by `factor`, blend between.
std::vector<double> llama3_inv_freq_f64(const RopeParams& p, int64_t dim) {
  const double old_len = static_cast<double>(p.original_max_position_embeddings);
  const double low_wavelen = old_len / p.low_freq_factor;
  const double high_wavelen = old_len / p.high_freq_factor;
  std::vector<double> f = default_inv_freq_f64(p.theta, dim);
  for (double& v : f) {
    const double wavelen = 2 * std::numbers::pi / v;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      v /= p.factor;
      continue;
    }
    const double smooth =
        (old_len / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
    v = (1 - smooth) * v / p.factor + smooth * v;
  }
  return f;
}

void expect_rel_close(std::span<const float> actual, const std::vector<double>& expected,
                      double tolerance) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_LE(std::abs(actual[i] - expected[i]), tolerance * expected[i])
        << "inv_freq[" << i << "]";
}

TEST(RopeTable, DefaultFrequencies) {
  for (const double theta : {10000.0, 500000.0, 1000000.0}) {
    for (const int64_t dim : {64, 128}) {
      SCOPED_TRACE(testing::Message() << "theta " << theta << " head_dim " << dim);
      const RopeTable table(default_rope(theta), dim);
      EXPECT_EQ(table.head_dim(), dim);
      EXPECT_EQ(table.inv_freq()[0], 1.0f);
      expect_rel_close(table.inv_freq(), default_inv_freq_f64(theta, dim), 1e-6);
    }
  }
}

TEST(RopeTable, DefaultFrequenciesForAHeadDimThatIsNotAPowerOfTwo) {
  // transformers rounds 2i/96 to float32 before the power: with theta = 1e6 that alone moves
  // inv_freq by up to ln(1e6) * 2^-24 ~ 8e-7, so the bound here is a little wider.
  const RopeTable table(default_rope(1e6), 96);
  expect_rel_close(table.inv_freq(), default_inv_freq_f64(1e6, 96), 2e-6);
}

TEST(RopeTable, Llama3FrequenciesOfTinyLlama) {
  // tiny-llama: theta 500000, head_dim 64, factor 8, low 1, high 4, original context 256, so the
  // wavelengths split at 64 and 256: i <= 5 are kept, 6..9 blended, i >= 10 divided by 8.
  const RopeParams p = llama3_rope(500000, 8, 1, 4, 256);
  const RopeTable table(p, 64);
  const RopeTable plain(default_rope(500000), 64);
  const auto f = table.inv_freq();
  const auto d = plain.inv_freq();
  ASSERT_EQ(f.size(), 32u);
  expect_rel_close(f, llama3_inv_freq_f64(p, 64), 1e-6);
  for (size_t i = 0; i < f.size(); ++i) {
    const double wavelen = 2 * std::numbers::pi / d[i];
    if (i <= 5) {
      EXPECT_LT(wavelen, 64.0) << i;
      EXPECT_EQ(f[i], d[i]) << i;
    } else if (i >= 10) {
      EXPECT_GT(wavelen, 256.0) << i;
      EXPECT_EQ(f[i], d[i] / 8) << i;
    } else {
      EXPECT_GE(wavelen, 64.0) << i;
      EXPECT_LE(wavelen, 256.0) << i;
      EXPECT_GT(f[i], d[i] / 8) << i;
      EXPECT_LT(f[i], d[i]) << i;
    }
  }
}

TEST(RopeTable, Llama3FrequenciesOfLlama31) {
  // The published Llama 3.1 / 3.2 settings (head_dim 128 and 64, original context 8192).
  for (const int64_t dim : {64, 128}) {
    for (const double factor : {8.0, 32.0}) {
      const RopeParams p = llama3_rope(500000, factor, 1, 4, 8192);
      const RopeTable table(p, dim);
      expect_rel_close(table.inv_freq(), llama3_inv_freq_f64(p, dim), 1e-6);
    }
  }
}

void expect_bits(std::span<const float> actual, const std::vector<uint32_t>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(actual[i]), expected[i]) << "inv_freq[" << i << "]";
}

TEST(RopeTable, Llama3FrequenciesAreTransformersBitForBit) {
  // The `inv_freq` buffers transformers 5.17.0 (torch 2.11.0) builds for these settings, as
  // float32 bit patterns.
  expect_bits(RopeTable(llama3_rope(500000, 8, 1, 4, 256), 64).inv_freq(),
              {0x3f800000, 0x3f29e1c6, 0x3ee177bc, 0x3e959ee3, 0x3e4693b0, 0x3e03c6a0, 0x3d945633,
               0x3ceb4310, 0x3c2ca88b, 0x3b546fc3, 0x3b07a9c3, 0x3ab40d6d, 0x3a6ef74f, 0x3a1e9402,
               0x39d27720, 0x398baa41, 0x39395d21, 0x38f603ea, 0x38a3418d, 0x3858ac81, 0x380fc8f8,
               0x37bed4f4, 0x377d45c3, 0x3728126b, 0x36df10c4, 0x369406cb, 0x36447610, 0x36025f34,
               0x35ad07a7, 0x3565a54d, 0x351864a7, 0x34ca41b0});
  expect_bits(RopeTable(llama3_rope(500000, 32, 1, 4, 8192), 64).inv_freq(),
              {0x3f800000, 0x3f29e1c6, 0x3ee177bc, 0x3e959ee3, 0x3e4693b0, 0x3e03c6a0, 0x3daee4ad,
               0x3d681e67, 0x3d1a08c8, 0x3ccc6f49, 0x3c87a9c3, 0x3c340d6d, 0x3beef74f, 0x3b9e9402,
               0x3b527720, 0x3aa9279b, 0x39e13620, 0x38cb98f7, 0x37a3418d, 0x3758ac81, 0x370fc8f8,
               0x36bed4f4, 0x367d45c3, 0x3628126b, 0x35df10c4, 0x359406cb, 0x35447610, 0x35025f34,
               0x34ad07a7, 0x3465a54d, 0x341864a7, 0x33ca41b0});
}

TEST(RopeTable, CosSinUseTheFloat32AngleOfTransformers) {
  // transformers forms the angle as a float32 product inv_freq * position (inv_freq @ positions);
  // the product of two floats is exact in double, so rounding it to float gives that angle.
  const RopeTable table(llama3_rope(500000, 8, 1, 4, 256), 64);
  std::vector<float> c(32), s(32);
  for (const int64_t pos : {0, 1, 17, 159, 4095, 131071}) {
    table.cos_sin(pos, c.data(), s.data());
    for (size_t i = 0; i < 32; ++i) {
      const double angle =
          static_cast<float>(double{table.inv_freq()[i]} * static_cast<double>(pos));
      EXPECT_NEAR(c[i], std::cos(angle), 1e-7) << pos << " " << i;
      EXPECT_NEAR(s[i], std::sin(angle), 1e-7) << pos << " " << i;
    }
  }
}

TEST(ApplyRope, PairsDimensionIWithIPlusHalf) {
  // head_dim 4, theta 10000: inv_freq = {1, 0.01}. At position 1, x = e_0 rotates within the pair
  // (0, 2) of the half-split layout, not (0, 1) as interleaved RoPE would.
  const RopeTable table(default_rope(10000), 4);
  std::vector<float> x = {1, 0, 0, 0};
  const std::vector<int64_t> pos = {1};
  apply_rope(x.data(), 1, 1, 4, pos, table);
  EXPECT_FLOAT_EQ(x[0], std::cos(1.0f));
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_FLOAT_EQ(x[2], std::sin(1.0f));
  EXPECT_EQ(x[3], 0.0f);
  // The second pair turns by 0.01 rad: x = e_3 -> (0, -sin, 0, cos).
  x = {0, 0, 0, 1};
  apply_rope(x.data(), 1, 1, 4, pos, table);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_FLOAT_EQ(x[1], -std::sin(0.01f));
  EXPECT_EQ(x[2], 0.0f);
  EXPECT_FLOAT_EQ(x[3], std::cos(0.01f));
}

TEST(ApplyRope, MatchesTheRotationInDouble) {
  const int64_t heads = 3, head_dim = 64, half = 32;
  const std::vector<int64_t> positions = {0, 5, 3, 159, 1000, 7, 42, 42};
  const int64_t tokens = static_cast<int64_t>(positions.size());
  const RopeTable table(llama3_rope(500000, 8, 1, 4, 256), head_dim);

  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(tokens * heads * head_dim);
  for (float& v : x) v = dist(rng);
  const auto x0 = x;
  apply_rope(x.data(), tokens, heads, head_dim, positions, table);

  double err = 0, norm = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* in = x0.data() + (t * heads + h) * head_dim;
      const float* out = x.data() + (t * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<float>(double{table.inv_freq()[i]} * positions[t]);
        const double c = std::cos(angle), s = std::sin(angle);
        const double lo = in[i] * c - in[i + half] * s;
        const double hi = in[i + half] * c + in[i] * s;
        err += std::pow(out[i] - lo, 2) + std::pow(out[i + half] - hi, 2);
        norm += lo * lo + hi * hi;
      }
    }
  }
  EXPECT_LT(std::sqrt(err / norm), 1e-6);
}

TEST(ApplyRope, ManyTokensAcrossThreadsMatchOneByOne) {
  const int64_t tokens = 160, heads = 4, head_dim = 128;
  const RopeTable table(default_rope(1e6), head_dim);
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(tokens * heads * head_dim);
  for (float& v : x) v = dist(rng);
  auto one_by_one = x;
  std::vector<int64_t> positions(tokens);
  for (int64_t t = 0; t < tokens; ++t) positions[t] = t;
  apply_rope(x.data(), tokens, heads, head_dim, positions, table);
  for (int64_t t = 0; t < tokens; ++t)
    apply_rope(one_by_one.data() + t * heads * head_dim, 1, heads, head_dim,
               std::span(positions).subspan(t, 1), table);
  EXPECT_EQ(x, one_by_one);
}

void expect_error(const RopeParams& p, int64_t head_dim, const std::string& needle) {
  try {
    RopeTable table(p, head_dim);
    FAIL() << "no error, expected one about " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(RopeTable, RejectsSettingsThatCannotWork) {
  expect_error(default_rope(10000), 63, "head_dim 63");
  expect_error(default_rope(10000), 0, "head_dim 0");
  expect_error(default_rope(0), 64, "rope_theta 0");
  expect_error(default_rope(-1), 64, "rope_theta -1");
  expect_error(llama3_rope(500000, 0, 1, 4, 8192), 64, "factor 0");
  expect_error(llama3_rope(500000, 8, 0, 4, 8192), 64, "low_freq_factor 0");
  expect_error(llama3_rope(500000, 8, 4, 4, 8192), 64, "high_freq_factor 4");
  expect_error(llama3_rope(500000, 8, 1, 4, 0), 64, "original_max_position_embeddings 0");
}

TEST(ApplyRope, RejectsMismatchedArguments) {
  const RopeTable table(default_rope(10000), 8);
  std::vector<float> x(2 * 8);
  const std::vector<int64_t> two = {0, 1};
  EXPECT_THROW(apply_rope(x.data(), 2, 1, 16, two, table), std::invalid_argument);
  EXPECT_THROW(apply_rope(x.data(), 1, 1, 8, two, table), std::invalid_argument);
  const std::vector<int64_t> negative = {0, -1};
  EXPECT_THROW(apply_rope(x.data(), 2, 1, 8, negative, table), std::invalid_argument);
}

}  // namespace
}  // namespace fp8llm::cpu
