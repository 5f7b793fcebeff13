// Scheme names, scale shapes and names, and the scale formula.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "quant/fp8_scheme.h"

namespace fp8llm {
namespace {

TEST(Fp8Scheme, ParsesBothSpellings) {
  EXPECT_EQ(parse_fp8_scheme("fp8-row"), Fp8Scheme::Row);
  EXPECT_EQ(parse_fp8_scheme("row"), Fp8Scheme::Row);
  EXPECT_EQ(parse_fp8_scheme("fp8-block"), Fp8Scheme::Block);
  EXPECT_EQ(parse_fp8_scheme("block"), Fp8Scheme::Block);
  EXPECT_EQ(parse_fp8_scheme("fp8"), std::nullopt);
  EXPECT_EQ(parse_fp8_scheme("Row"), std::nullopt);
  EXPECT_EQ(parse_fp8_scheme(""), std::nullopt);
  EXPECT_EQ(fp8_scheme_name(Fp8Scheme::Row), "row");
  EXPECT_EQ(fp8_scheme_name(Fp8Scheme::Block), "block");
}

TEST(Fp8Scheme, ScaleShapes) {
  EXPECT_EQ(weight_scale_shape(Fp8Scheme::Row, 200, 192), (Shape{200, 1}));
  EXPECT_EQ(weight_scale_shape(Fp8Scheme::Block, 200, 192), (Shape{2, 2}));
  EXPECT_EQ(weight_scale_shape(Fp8Scheme::Block, 256, 128), (Shape{2, 1}));
  EXPECT_EQ(weight_scale_shape(Fp8Scheme::Block, 257, 129), (Shape{3, 2}));
  EXPECT_EQ(activation_scale_shape(Fp8Scheme::Row, 37, 200), (Shape{37, 1}));
  EXPECT_EQ(activation_scale_shape(Fp8Scheme::Block, 37, 200), (Shape{37, 2}));
  EXPECT_EQ(activation_scale_shape(Fp8Scheme::Block, 5, 128), (Shape{5, 1}));
}

TEST(Fp8Scheme, ScaleNames) {
  EXPECT_EQ(weight_scale_name(Fp8Scheme::Row, "model.layers.0.mlp.up_proj.weight"),
            "model.layers.0.mlp.up_proj.weight_scale");
  EXPECT_EQ(weight_scale_name(Fp8Scheme::Block, "model.layers.0.mlp.up_proj.weight"),
            "model.layers.0.mlp.up_proj.weight_scale_inv");
}

TEST(Fp8Scheme, ScaleByTrueDivision) {
  constexpr auto kDivide = Fp8ScaleRule::Divide;
  EXPECT_EQ(fp8_scale_from_amax(0.0f, kDivide), 1.0f);
  EXPECT_EQ(fp8_scale_from_amax(448.0f, kDivide), 1.0f);
  EXPECT_EQ(fp8_scale_from_amax(896.0f, kDivide), 2.0f);
  // A float32 division, rounded once.
  for (float amax : {0.1f, 3.0f, 1e-30f, 3.4e38f, 7.0e-3f}) {
    volatile float d = 448.0f;
    EXPECT_EQ(fp8_scale_from_amax(amax, kDivide), amax / d) << amax;
  }
  // A subnormal amax can give a zero scale; only amax == 0 is special-cased.
  EXPECT_EQ(fp8_scale_from_amax(1e-45f, kDivide), 0.0f);
  EXPECT_EQ(fp8_scale_from_amax(1e-45f), 0.0f);
}

TEST(Fp8Scheme, ScaleByTheRoundedReciprocalIsTheDefault) {
  constexpr auto kMul = Fp8ScaleRule::MultiplyByReciprocal;
  EXPECT_EQ(fp8_scale_from_amax(0.0f, kMul), 1.0f);
  EXPECT_EQ(fp8_scale_from_amax(448.0f, kMul), 1.0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(fp8_scale_from_amax(1.0f, kMul)), 0x3B124925u);
  // An amax from the reference checkpoints where the two rules differ: the weight scale there is
  // the product (0x39B80001), the true quotient is 0x39B80000.
  EXPECT_EQ(std::bit_cast<uint32_t>(fp8_scale_from_amax(0.1572265625f, kMul)), 0x39B80001u);
  EXPECT_EQ(std::bit_cast<uint32_t>(fp8_scale_from_amax(0.1572265625f, Fp8ScaleRule::Divide)),
            0x39B80000u);
  EXPECT_EQ(fp8_scale_from_amax(0.1572265625f), fp8_scale_from_amax(0.1572265625f, kMul));
  int differ = 0;
  for (int i = 1; i <= 1000; ++i) {
    const float amax = static_cast<float>(i) * 0.001f;
    volatile float inverse = 1.0f / 448.0f;
    EXPECT_EQ(fp8_scale_from_amax(amax, kMul), amax * inverse);
    EXPECT_EQ(fp8_scale_from_amax(amax), amax * inverse);
    differ += fp8_scale_from_amax(amax, kMul) != fp8_scale_from_amax(amax, Fp8ScaleRule::Divide);
  }
  EXPECT_GT(differ, 100);
}

}  // namespace
}  // namespace fp8llm
