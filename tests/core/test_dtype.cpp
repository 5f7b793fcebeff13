// dtype conversions against independent slow encoders written here from the format definitions.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"

namespace fp8llm {
namespace {

// Decodes float8_e4m3fn from first principles: bias 7, 3 mantissa bits, S.1111.111 is NaN.
double slow_e4m3_value(int code) {
  const int sign = code >> 7, exp = (code >> 3) & 15, mant = code & 7;
  double v = exp == 0 ? std::ldexp(mant / 8.0, -6) : std::ldexp(1 + mant / 8.0, exp - 7);
  return sign ? -v : v;
}

// The nearest of the 256 decoded values (ties to the even code); beyond the format
// (|x| rounding to 480 or more) or NaN/inf: NaN. Compares in double, so it is exact.
uint8_t slow_encode_e4m3(float x) {
  if (std::isnan(x) || std::isinf(x)) return std::signbit(x) ? 0xFF : 0x7F;
  const double a = std::fabs(static_cast<double>(x));
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  int best = 0;
  double best_err = INFINITY;
  for (int code = 0; code <= 0x7E; ++code) {
    const double err = std::fabs(slow_e4m3_value(code) - a);
    if (err < best_err || (err == best_err && (code & 1) == 0)) {
      best = code;
      best_err = err;
    }
  }
  // 480 would be the next step after 448: a value nearer to 480 (or a tie, 480 being even) is
  // out of range.
  if (a >= 464.0 && !(a == 464.0)) return sign | 0x7F;
  return static_cast<uint8_t>(sign | best);
}

TEST(DType, E4M3DecodesEveryCode) {
  for (int code = 0; code < 256; ++code) {
    const float got = e4m3_to_f32(static_cast<uint8_t>(code));
    if ((code & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(got)) << code;
      continue;
    }
    EXPECT_EQ(static_cast<double>(got), slow_e4m3_value(code)) << "code " << code;
  }
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3_to_f32(0x08), std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::signbit(e4m3_to_f32(0x80)));
}

TEST(DType, E4M3EncodesAllBf16Values) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float x = bf16_to_f32(static_cast<uint16_t>(h));
    const uint8_t got = f32_to_e4m3(x);
    const uint8_t want = slow_encode_e4m3(x);
    ASSERT_EQ(got, want) << "bf16 bits " << h << " value " << x;
  }
}

TEST(DType, E4M3EncodesRandomFloats) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_real_distribution<float> near(-500.0f, 500.0f);
  for (int i = 0; i < 2'000'000; ++i) {
    // Half are arbitrary bit patterns, half are in the format's range (where rounding matters).
    float x = (i & 1) ? std::bit_cast<float>(bits(rng)) : near(rng) * std::ldexp(1.0f, -(i % 20));
    ASSERT_EQ(f32_to_e4m3(x), slow_encode_e4m3(x)) << "value " << x;
  }
  // Ties: exactly halfway between codes goes to the even code.
  EXPECT_EQ(f32_to_e4m3(464.0f), 0x7E);  // halfway 448..480: 448 (even)
  EXPECT_EQ(f32_to_e4m3(464.01f), 0x7F);
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -10)), 0x00);       // half of the smallest subnormal
  EXPECT_EQ(f32_to_e4m3(std::ldexp(3.0f, -10)), 0x02);       // 1.5 subnormal steps -> 2
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
}

// bf16/fp16/e5m2: compare against the nearest representable value found by a slow search over
// all codes of the format. IEEE overflow: the infinity code stands for the next power of two
// (`inf_as`), the value the exponent would reach if it were unbounded.
template <typename Decode>
uint32_t slow_encode(float x, int codes, Decode decode, double inf_as) {
  int best = 0;
  double best_err = INFINITY;
  const double a = std::fabs(static_cast<double>(x));
  for (int c = 0; c < codes; ++c) {
    double v = decode(c);
    if (std::isnan(v)) continue;
    if (std::isinf(v)) v = inf_as;
    const double err = std::fabs(v - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return static_cast<uint32_t>(best);
}

TEST(DType, E5M2EncodesLikeSlowSearch) {
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> u(-70000.0f, 70000.0f);
  auto decode = [](int c) { return static_cast<double>(e5m2_to_f32(static_cast<uint8_t>(c))); };
  for (int i = 0; i < 200000; ++i) {
    const float x = u(rng) * std::ldexp(1.0f, -(i % 40));
    const uint8_t got = f32_to_e5m2(x);
    const uint8_t sign = std::signbit(x) ? 0x80 : 0;
    // 0x7C (inf) is a legal target: the search over codes 0..0x7C includes it via decode(inf).
    uint32_t want = slow_encode(x, 0x7D, decode, 65536.0);
    ASSERT_EQ(got, sign | want) << x;
  }
  EXPECT_TRUE(std::isnan(e5m2_to_f32(f32_to_e5m2(NAN))));
}

TEST(DType, Bf16RoundTripAndRounding) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float x = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(x))));
      continue;
    }
    ASSERT_EQ(f32_to_bf16(x), h);
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 1'000'000; ++i) {
    const float x = std::bit_cast<float>(bits(rng));
    if (std::isnan(x)) {
      ASSERT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(x))));
      continue;
    }
    // Reference: the two neighbours by truncation, pick the nearer, ties to even, in double.
    const uint32_t u = std::bit_cast<uint32_t>(x);
    const uint16_t lo = static_cast<uint16_t>(u >> 16);
    const uint16_t hi = static_cast<uint16_t>(lo + 1);
    const double dlo = std::fabs(static_cast<double>(bf16_to_f32(lo)) - x);
    const double hi_value = (hi & 0x7FFF) == 0x7F80 ? std::copysign(std::ldexp(1.0, 128), x)
                                                    : static_cast<double>(bf16_to_f32(hi));
    const double dhi = std::fabs(hi_value - x);
    const uint16_t want = dlo < dhi ? lo : dhi < dlo ? hi : ((lo & 1) ? hi : lo);
    ASSERT_EQ(f32_to_bf16(x), want) << x;
  }
}

TEST(DType, F16EncodesLikeSlowSearch) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-70000.0f, 70000.0f);
  auto decode = [](int c) { return static_cast<double>(f16_to_f32(static_cast<uint16_t>(c))); };
  for (int i = 0; i < 20000; ++i) {
    const float x = u(rng) * std::ldexp(1.0f, -(i % 30));
    const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
    ASSERT_EQ(f32_to_f16(x), sign | slow_encode(x, 0x7C01, decode, 65536.0)) << x;
  }
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);
}

TEST(DType, Names) {
  EXPECT_EQ(dtype_from_name("F8_E4M3"), DType::F8_E4M3);
  EXPECT_EQ(dtype_name(DType::BF16), "BF16");
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_FALSE(dtype_from_name("bf16").has_value());
}

}  // namespace
}  // namespace fp8llm
