// Quantizing part of a weight or some columns of an activation gives exactly what quantizing the
// whole gives there (the tensor-parallel shards), including regions that cut 128x128 tiles, 1x128
// activation groups and rows, and non-finite values.
#include "quant/region_quantizer.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "quant/quantizer.h"
#include "test_util.h"

namespace fp8llm {
namespace {

using test::error_of;

HostTensor random_weight(DType dtype, int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  // Magnitudes over several decades, so that tiles and rows get different scales.
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> decade(-6, 2);
  HostTensor t(dtype, {n, k});
  for (int64_t i = 0; i < n * k; ++i) {
    const float v = normal(rng) * std::ldexp(1.0f, decade(rng));
    if (dtype == DType::BF16) t.as<uint16_t>()[i] = f32_to_bf16(v);
    if (dtype == DType::F16) t.as<uint16_t>()[i] = f32_to_f16(v);
    if (dtype == DType::F32) t.as<float>()[i] = v;
  }
  return t;
}

void expect_region_is_slice_of_whole(Fp8Scheme scheme, const HostTensor& w,
                                     const TensorSlice& region, const std::string& label) {
  const int64_t k = w.shape[1];
  const QuantizedTensor whole = quantize_weight(scheme, w.view(), label);
  const Shape scale_shape = region_scale_shape(scheme, region);
  std::vector<uint8_t> q(static_cast<size_t>(region.rows() * region.cols()));
  std::vector<float> scales(static_cast<size_t>(num_elements(scale_shape)));
  quantize_weight_region(scheme, w.view(), region, q.data(), scales.data(), label);
  for (int64_t r = 0; r < region.rows(); ++r) {
    for (int64_t c = 0; c < region.cols(); ++c) {
      ASSERT_EQ(q[static_cast<size_t>(r * region.cols() + c)],
                whole.q.as<uint8_t>()[(region.row_begin + r) * k + region.col_begin + c])
          << label << " element [" << region.row_begin + r << ", " << region.col_begin + c << "]";
    }
  }
  const TensorSlice grid = region_scale_grid(scheme, region);
  ASSERT_EQ(scale_shape, (Shape{grid.rows(), grid.cols()}));
  const int64_t whole_cols = whole.scale.shape[1];
  for (int64_t r = 0; r < grid.rows(); ++r) {
    for (int64_t c = 0; c < grid.cols(); ++c) {
      ASSERT_EQ(
          std::bit_cast<uint32_t>(scales[static_cast<size_t>(r * grid.cols() + c)]),
          std::bit_cast<uint32_t>(
              whole.scale.as<float>()[(grid.row_begin + r) * whole_cols + grid.col_begin + c]))
          << label << " scale [" << grid.row_begin + r << ", " << grid.col_begin + c << "]";
    }
  }
}

TEST(RegionQuantizer, RegionsEqualTheWholeWeightsCodesAndScales) {
  // Regions that start and end inside tiles, on tile edges, at the matrix edges (partial tiles),
  // a single element, and the whole matrix.
  const std::vector<TensorSlice> regions = {
      {0, 200, 0, 300},     {64, 192, 0, 300},    {0, 200, 160, 300}, {37, 150, 5, 290},
      {128, 200, 256, 300}, {199, 200, 299, 300}, {0, 128, 128, 256}, {100, 101, 0, 300},
  };
  for (const DType dtype : {DType::BF16, DType::F16, DType::F32}) {
    const HostTensor w = random_weight(dtype, 200, 300, 7);
    for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
      for (const TensorSlice& r : regions) {
        expect_region_is_slice_of_whole(
            scheme, w, r,
            fmt::format("{} {} [{}:{}, {}:{}]", dtype_name(dtype), fp8_scheme_name(scheme),
                        r.row_begin, r.row_end, r.col_begin, r.col_end));
      }
    }
  }
}

TEST(RegionQuantizer, ScaleGridOfARegion) {
  EXPECT_EQ(region_scale_grid(Fp8Scheme::Block, {64, 192, 160, 300}), (TensorSlice{0, 2, 1, 3}));
  EXPECT_EQ(region_scale_grid(Fp8Scheme::Block, {128, 256, 0, 128}), (TensorSlice{1, 2, 0, 1}));
  EXPECT_EQ(region_scale_grid(Fp8Scheme::Row, {64, 192, 160, 300}), (TensorSlice{64, 192, 0, 1}));
  EXPECT_EQ(region_scale_shape(Fp8Scheme::Block, {64, 192, 160, 300}), (Shape{2, 2}));
}

TEST(RegionQuantizer, NonFiniteValuesInWhatTheRegionReads) {
  HostTensor w = random_weight(DType::BF16, 256, 256, 3);
  // A NaN in tile (0, 1) and row 5, outside the region's columns [0, 64): the row scheme reads
  // the whole row and the block scheme does not read that tile.
  w.as<uint16_t>()[5 * 256 + 200] = 0x7FC0;
  const TensorSlice region{0, 64, 0, 64};
  std::vector<uint8_t> q(64 * 64);
  std::vector<float> scales(64);
  EXPECT_EQ(error_of([&] {
              quantize_weight_region(Fp8Scheme::Row, w.view(), region, q.data(), scales.data(),
                                     "w");
            }),
            "w: contains NaN at [5, 200]; refusing to quantize");
  EXPECT_EQ(error_of([&] {
              quantize_weight_region(Fp8Scheme::Block, w.view(), region, q.data(), scales.data(),
                                     "w");
            }),
            "");
  // In the tile the region cuts: an error for both.
  w.as<uint16_t>()[100 * 256 + 100] = 0x7F80;  // +inf
  EXPECT_EQ(error_of([&] {
              quantize_weight_region(Fp8Scheme::Block, w.view(), region, q.data(), scales.data(),
                                     "w");
            }),
            "w: contains Inf at [100, 100]; refusing to quantize");
}

TEST(RegionQuantizer, RegionOutsideTheWeightIsAnError) {
  const HostTensor w = random_weight(DType::BF16, 16, 16, 1);
  std::vector<uint8_t> q(512);
  std::vector<float> scales(32);
  EXPECT_EQ(error_of([&] {
              quantize_weight_region(Fp8Scheme::Row, w.view(), {0, 17, 0, 16}, q.data(),
                                     scales.data(), "w");
            }),
            "w: region rows [0, 17) columns [0, 16) is not inside [16, 16]");
}

// Activations split by columns at `edges`; each part's amaxes reduced by the largest, then each
// part quantized: the codes and scales of quantize_activations over the whole rows.
void expect_columns_match_whole_rows(Fp8Scheme scheme, const std::vector<float>& x, int64_t t,
                                     int64_t k, const std::vector<int64_t>& edges) {
  const int64_t groups = num_elements(activation_scale_shape(scheme, t, k));
  std::vector<uint8_t> whole_q(static_cast<size_t>(t * k));
  std::vector<float> whole_scales(static_cast<size_t>(groups));
  quantize_activations(scheme, x.data(), t, k, whole_q.data(), whole_scales.data());

  std::vector<std::vector<float>> parts;
  std::vector<uint32_t> amax(static_cast<size_t>(groups), 0);
  for (size_t p = 0; p + 1 < edges.size(); ++p) {
    const int64_t c0 = edges[p], width = edges[p + 1] - c0;
    std::vector<float>& part = parts.emplace_back(static_cast<size_t>(t * width));
    for (int64_t r = 0; r < t; ++r)
      for (int64_t c = 0; c < width; ++c)
        part[static_cast<size_t>(r * width + c)] = x[static_cast<size_t>(r * k + c0 + c)];
    std::vector<uint32_t> part_amax(static_cast<size_t>(groups));
    activation_amax_bits(scheme, part.data(), t, width, c0, k, part_amax.data());
    for (size_t i = 0; i < amax.size(); ++i) amax[i] = std::max(amax[i], part_amax[i]);
  }
  for (size_t p = 0; p + 1 < edges.size(); ++p) {
    const int64_t c0 = edges[p], width = edges[p + 1] - c0;
    std::vector<uint8_t> q(static_cast<size_t>(t * width));
    std::vector<float> scales(static_cast<size_t>(groups));
    quantize_activation_columns(scheme, parts[p].data(), t, width, c0, k, amax.data(), q.data(),
                                scales.data());
    for (size_t i = 0; i < scales.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(scales[i]), std::bit_cast<uint32_t>(whole_scales[i]))
          << fp8_scheme_name(scheme) << " part " << p << " scale " << i;
    }
    for (int64_t r = 0; r < t; ++r) {
      for (int64_t c = 0; c < width; ++c) {
        ASSERT_EQ(q[static_cast<size_t>(r * width + c)],
                  whole_q[static_cast<size_t>(r * k + c0 + c)])
            << fp8_scheme_name(scheme) << " part " << p << " [" << r << ", " << c0 + c << "]";
      }
    }
  }
}

TEST(RegionQuantizer, ActivationColumnsWithReducedAmaxEqualWholeRows) {
  const int64_t t = 9, k = 300;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(t * k));
  for (float& v : x) v = normal(rng);
  for (int64_t c = 0; c < k; ++c) x[static_cast<size_t>(2 * k + c)] = 0.0f;  // a row of zeros
  x[static_cast<size_t>(4 * k + 250)] = 3.0e6f;  // one large value on the last rank's side
  x[static_cast<size_t>(5 * k + 17)] = std::numeric_limits<float>::quiet_NaN();
  x[static_cast<size_t>(6 * k + 130)] = std::numeric_limits<float>::infinity();
  for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    expect_columns_match_whole_rows(scheme, x, t, k, {0, 300});
    expect_columns_match_whole_rows(scheme, x, t, k, {0, 150, 300});           // cuts group 1
    expect_columns_match_whole_rows(scheme, x, t, k, {0, 75, 150, 225, 300});  // cuts 3 groups
    expect_columns_match_whole_rows(scheme, x, t, k, {0, 128, 256, 300});      // on group edges
  }
}

}  // namespace
}  // namespace fp8llm
