// The CPU's FP8 linear over weight shards (tensor parallelism): column-parallel shards give the
// whole layer's outputs bit for bit, and row-parallel shards give partial sums of exactly the
// whole layer's dequantized operands, whose sum is the whole layer's output within fp32 rounding;
// also where shard edges cut 128x128 weight tiles and 1x128 activation groups.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/linear.h"
#include "core/dtype.h"
#include "quant/quantizer.h"
#include "quant/region_quantizer.h"
#include "test_util.h"

namespace fp8llm {
namespace {

constexpr int64_t kT = 5, kN = 300, kK = 260;

struct Layer {
  HostTensor w;  // BF16 [kN, kK]
  std::vector<float> x;
};

Layer random_layer(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Layer l{HostTensor(DType::BF16, {kN, kK}), std::vector<float>(kT * kK)};
  for (int64_t i = 0; i < kN * kK; ++i) {
    // Rows and tiles of different magnitudes, so that a wrong scale shows.
    const float v = normal(rng) * std::ldexp(1.0f, static_cast<int>((i / kK) % 5) - 2);
    l.w.as<uint16_t>()[i] = f32_to_bf16(v);
  }
  for (int64_t i = 0; i < kT * kK; ++i)
    l.x[static_cast<size_t>(i)] = normal(rng) * std::ldexp(1.0f, static_cast<int>(i % 7) - 3);
  return l;
}

TEST(LinearShard, ColumnParallelShardsGiveTheWholeOutputsBitForBit) {
  const Layer l = random_layer(5);
  for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    const QuantizedTensor whole = quantize_weight(scheme, l.w.view(), "w");
    std::vector<float> y(kT * kN);
    cpu::linear_fp8(scheme, l.x.data(), kT, kK, whole.q.as<uint8_t>(), whole.scale.as<float>(), kN,
                    nullptr, y.data());
    const std::vector<int64_t> edges = {0, 64, 200, 300};  // 64 and 200 cut tiles
    for (size_t p = 0; p + 1 < edges.size(); ++p) {
      const TensorSlice region{edges[p], edges[p + 1], 0, kK};
      std::vector<uint8_t> q(static_cast<size_t>(region.rows() * kK));
      std::vector<float> scales(
          static_cast<size_t>(num_elements(region_scale_shape(scheme, region))));
      quantize_weight_region(scheme, l.w.view(), region, q.data(), scales.data(), "w");
      std::vector<float> part(static_cast<size_t>(kT * region.rows()));
      cpu::linear_fp8_shard(scheme, l.x.data(), kT, kK, q.data(), scales.data(), region.rows(),
                            {.row = region.row_begin, .col = 0, .full_k = kK}, nullptr,
                            part.data());
      for (int64_t t = 0; t < kT; ++t) {
        for (int64_t n = 0; n < region.rows(); ++n) {
          ASSERT_EQ(std::bit_cast<uint32_t>(part[static_cast<size_t>(t * region.rows() + n)]),
                    std::bit_cast<uint32_t>(y[static_cast<size_t>(t * kN + region.row_begin + n)]))
              << fp8_scheme_name(scheme) << " [" << t << ", " << region.row_begin + n << "]";
        }
      }
    }
  }
}

TEST(LinearShard, RowParallelPartialSumsAddUpToTheWholeOutput) {
  const Layer l = random_layer(9);
  for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    // The whole layer's dequantized operands, to sum each part in double.
    const QuantizedTensor whole = quantize_weight(scheme, l.w.view(), "w");
    std::vector<float> wd(kN * kK);
    dequantize_weight(scheme, whole.q.as<uint8_t>(), whole.scale.as<float>(), kN, kK, wd.data());
    std::vector<uint8_t> xq(kT * kK);
    std::vector<float> xs(
        static_cast<size_t>(num_elements(activation_scale_shape(scheme, kT, kK))));
    quantize_activations(scheme, l.x.data(), kT, kK, xq.data(), xs.data());
    std::vector<float> y(kT * kN);
    cpu::linear_fp8(scheme, l.x.data(), kT, kK, whole.q.as<uint8_t>(), whole.scale.as<float>(), kN,
                    nullptr, y.data());

    const std::vector<int64_t> edges = {0, 100, 192, 260};  // 100 cuts tile / group 0
    std::vector<std::vector<float>> parts_x;
    const int64_t groups = num_elements(activation_scale_shape(scheme, kT, kK));
    std::vector<uint32_t> amax(static_cast<size_t>(groups), 0);
    for (size_t p = 0; p + 1 < edges.size(); ++p) {
      const int64_t c0 = edges[p], width = edges[p + 1] - c0;
      std::vector<float>& px = parts_x.emplace_back(static_cast<size_t>(kT * width));
      for (int64_t t = 0; t < kT; ++t)
        for (int64_t c = 0; c < width; ++c)
          px[static_cast<size_t>(t * width + c)] = l.x[static_cast<size_t>(t * kK + c0 + c)];
      std::vector<uint32_t> a(static_cast<size_t>(groups));
      activation_amax_bits(scheme, px.data(), kT, width, c0, kK, a.data());
      for (size_t i = 0; i < a.size(); ++i) amax[i] = std::max(amax[i], a[i]);
    }
    std::vector<float> sum(kT * kN, 0.0f);
    for (size_t p = 0; p + 1 < edges.size(); ++p) {
      const int64_t c0 = edges[p], width = edges[p + 1] - c0;
      const TensorSlice region{0, kN, c0, c0 + width};
      std::vector<uint8_t> q(static_cast<size_t>(kN * width));
      std::vector<float> scales(
          static_cast<size_t>(num_elements(region_scale_shape(scheme, region))));
      quantize_weight_region(scheme, l.w.view(), region, q.data(), scales.data(), "w");
      std::vector<uint8_t> pq(static_cast<size_t>(kT * width));
      std::vector<float> ps(static_cast<size_t>(groups));
      quantize_activation_columns(scheme, parts_x[p].data(), kT, width, c0, kK, amax.data(),
                                  pq.data(), ps.data());
      std::vector<float> partial(kT * kN);
      cpu::linear_fp8_quantized_shard(scheme, pq.data(), ps.data(), kT, width, q.data(),
                                      scales.data(), kN, {.row = 0, .col = c0, .full_k = kK},
                                      nullptr, partial.data());
      // The part's sum in double over the whole layer's dequantized operands.
      const int64_t group = scheme == Fp8Scheme::Row ? kK : kFp8BlockSize;
      const int64_t per_row = groups / kT;
      std::vector<float> want(kT * kN);
      for (int64_t t = 0; t < kT; ++t) {
        for (int64_t n = 0; n < kN; ++n) {
          double s = 0;
          for (int64_t c = c0; c < c0 + width; ++c) {
            const double xd = static_cast<double>(e4m3_to_f32(xq[static_cast<size_t>(t * kK + c)]) *
                                                  xs[static_cast<size_t>(t * per_row + c / group)]);
            s += xd * wd[static_cast<size_t>(n * kK + c)];
          }
          want[static_cast<size_t>(t * kN + n)] = static_cast<float>(s);
        }
      }
      EXPECT_LT(test::rel_l2(partial, want), 1e-6) << fp8_scheme_name(scheme) << " part " << p;
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += partial[i];
    }
    // The whole layer sums all of k in one fp32 sum; the parts' sums added differ by rounding.
    const double err = test::rel_l2(sum, y);
    EXPECT_LT(err, 1e-6) << fp8_scheme_name(scheme);
  }
}

}  // namespace
}  // namespace fp8llm
