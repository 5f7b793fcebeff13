// The fused norm and gating kernels (fused_quant.h) against the plain kernels followed by the
// activation quantizer: the same fp32 outputs (and residual stream), codes and scales, bit for
// bit, also when they write the codes alone, for both FP8 schemes, every thread layout the row
// kernels use (rows of 256, 300, 4096 and 14336), and rows split between cuBLASLt's part (rows_lt)
// and the small-M kernel's. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/kernels/fused_quant.h"
#include "backend/cuda/kernels/model_kernels.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/dtype.h"
#include "test_util.h"

namespace fp8llm::cuda {
namespace {

struct Case {
  int64_t rows, dim, rows_lt;
};

class CudaFusedQuant : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

std::vector<float> normal_values(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// Codes and both parts' scales, as the plain path makes them: the quantizer on rows
// [0, rows_lt) and on the rest, each part with its own scales (Fp8Linear's layout).
struct Quantized {
  DeviceBuffer q, s1, s2;
  Quantized(Fp8Scheme scheme, const Case& c)
      : q(static_cast<size_t>(c.rows * c.dim)),
        s1(static_cast<size_t>(activation_scale_elems(scheme, c.rows_lt, c.dim) + 1) * 4),
        s2(static_cast<size_t>(activation_scale_elems(scheme, c.rows - c.rows_lt, c.dim) + 1) * 4) {
  }
  Fp8QuantizedOut out(Fp8Scheme scheme, const Case& c) {
    return {scheme, q.as<uint8_t>(), s1.as<float>(), s2.as<float>(), c.rows_lt};
  }
  void quantize(Fp8Scheme scheme, const Case& c, const float* x) {
    launch_quantize_activations(scheme, x, c.rows_lt, c.dim, q.as<uint8_t>(), s1.as<float>(),
                                nullptr);
    launch_quantize_activations(scheme, x + c.rows_lt * c.dim, c.rows - c.rows_lt, c.dim,
                                q.as<uint8_t>() + c.rows_lt * c.dim, s2.as<float>(), nullptr);
  }
};

void expect_same_bytes(const DeviceBuffer& got, const DeviceBuffer& want, size_t bytes,
                       const std::string& what) {
  const std::vector<uint8_t> g = to_host<uint8_t>(got, bytes);
  const std::vector<uint8_t> w = to_host<uint8_t>(want, bytes);
  EXPECT_EQ(std::memcmp(g.data(), w.data(), bytes), 0) << what;
}

void expect_same_quantized(Quantized& got, Quantized& want, Fp8Scheme scheme, const Case& c) {
  expect_same_bytes(got.q, want.q, static_cast<size_t>(c.rows * c.dim), "codes");
  expect_same_bytes(got.s1, want.s1,
                    static_cast<size_t>(activation_scale_elems(scheme, c.rows_lt, c.dim)) * 4,
                    "scales of the cuBLASLt rows");
  expect_same_bytes(
      got.s2, want.s2,
      static_cast<size_t>(activation_scale_elems(scheme, c.rows - c.rows_lt, c.dim)) * 4,
      "scales of the small-M rows");
}

TEST_P(CudaFusedQuant, NormThenQuantizeEqualsThePlainKernels) {
  const Case c = GetParam();
  const auto n = static_cast<size_t>(c.rows * c.dim);
  const std::vector<float> x0 = normal_values(n, 1, 1.0f);
  const std::vector<float> residual = normal_values(n, 2, 0.5f);
  std::vector<uint16_t> w(static_cast<size_t>(c.dim));
  const std::vector<float> wf = normal_values(w.size(), 3, 0.2f);
  for (size_t i = 0; i < w.size(); ++i) w[i] = f32_to_bf16(1.0f + wf[i]);
  const DeviceBuffer dw = to_device(w);
  const auto* wp = dw.as<__nv_bfloat16>();
  for (const bool add : {false, true}) {
    for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
      SCOPED_TRACE(std::string(add ? "add_rms_norm" : "rms_norm") +
                   (scheme == Fp8Scheme::Row ? ", row" : ", block"));
      DeviceBuffer x_plain = to_device(x0), x_fused = to_device(x0);
      const DeviceBuffer r = to_device(residual);
      DeviceBuffer out_plain(n * 4), out_fused(n * 4);
      Quantized want(scheme, c), got(scheme, c);
      if (add) {
        launch_add_rms_norm(x_plain.as<float>(), r.as<float>(), c.rows, c.dim, wp, 1e-5f,
                            out_plain.as<float>(), nullptr);
      } else {
        launch_rms_norm(x_plain.as<float>(), c.rows, c.dim, wp, 1e-5f, out_plain.as<float>(),
                        nullptr);
      }
      want.quantize(scheme, c, out_plain.as<float>());
      launch_rms_norm_quantize(x_fused.as<float>(), add ? r.as<float>() : nullptr, c.rows, c.dim,
                               wp, 1e-5f, out_fused.as<float>(), got.out(scheme, c), nullptr);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      expect_same_bytes(out_fused, out_plain, n * 4, "normalized rows");
      expect_same_bytes(x_fused, x_plain, n * 4, "residual stream");
      expect_same_quantized(got, want, scheme, c);

      // Codes only (no fp32 output): the same codes, scales and residual stream.
      DeviceBuffer x_codes = to_device(x0);
      Quantized codes(scheme, c);
      launch_rms_norm_quantize(x_codes.as<float>(), add ? r.as<float>() : nullptr, c.rows, c.dim,
                               wp, 1e-5f, nullptr, codes.out(scheme, c), nullptr);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      expect_same_bytes(x_codes, x_plain, n * 4, "residual stream, codes only");
      expect_same_quantized(codes, want, scheme, c);
    }
  }
}

TEST_P(CudaFusedQuant, GatingThenQuantizeEqualsThePlainKernels) {
  const Case c = GetParam();
  const auto n = static_cast<size_t>(c.rows * c.dim);
  std::vector<float> gate = normal_values(n, 4, 2.0f);
  gate[0] = 0.0f;  // a zero in the first group
  const std::vector<float> up = normal_values(n, 5, 1.0f);
  for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    SCOPED_TRACE(scheme == Fp8Scheme::Row ? "row" : "block");
    const DeviceBuffer g = to_device(gate), u = to_device(up);
    DeviceBuffer out_plain(n * 4);
    DeviceBuffer in_place = to_device(gate);  // the model writes the gating over gate
    Quantized want(scheme, c), got(scheme, c);
    launch_silu_mul(g.as<float>(), u.as<float>(), static_cast<int64_t>(n), out_plain.as<float>(),
                    nullptr);
    want.quantize(scheme, c, out_plain.as<float>());
    launch_silu_mul_quantize(in_place.as<float>(), u.as<float>(), c.rows, c.dim,
                             in_place.as<float>(), got.out(scheme, c), nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_same_bytes(in_place, out_plain, n * 4, "gated rows");
    expect_same_quantized(got, want, scheme, c);

    // Codes only: the same codes and scales, and gate left as it was.
    DeviceBuffer untouched = to_device(gate);
    Quantized codes(scheme, c);
    launch_silu_mul_quantize(untouched.as<float>(), u.as<float>(), c.rows, c.dim, nullptr,
                             codes.out(scheme, c), nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_same_bytes(untouched, g, n * 4, "gate, codes only");
    expect_same_quantized(codes, want, scheme, c);
  }
}

// The norm kernels (both thread layouts: rows that are a multiple of 128 take the vector one)
// against the definition computed on the host with the same roundings, squares summed in double:
// the same bits. Also written over x, as the model normalizes q and k in place.
TEST_P(CudaFusedQuant, NormEqualsTheHostDefinition) {
  const Case c = GetParam();
  const auto n = static_cast<size_t>(c.rows * c.dim);
  const std::vector<float> x0 = normal_values(n, 6, 1.5f);
  const std::vector<float> residual = normal_values(n, 7, 0.5f);
  std::vector<uint16_t> w(static_cast<size_t>(c.dim));
  const std::vector<float> wf = normal_values(w.size(), 8, 0.2f);
  for (size_t i = 0; i < w.size(); ++i) w[i] = f32_to_bf16(1.0f + wf[i]);
  const float eps = 1e-6f;
  for (const bool add : {false, true}) {
    SCOPED_TRACE(add ? "add_rms_norm" : "rms_norm");
    std::vector<float> sum(n), want(n);
    for (int64_t row = 0; row < c.rows; ++row) {
      double ss = 0.0;
      for (int64_t i = 0; i < c.dim; ++i) {
        const size_t at = static_cast<size_t>(row * c.dim + i);
        sum[at] = add ? x0[at] + residual[at] : x0[at];
        ss += static_cast<double>(sum[at] * sum[at]);
      }
      const auto variance = static_cast<float>(ss / static_cast<double>(c.dim));
      const auto inv_rms = static_cast<float>(1.0 / std::sqrt(static_cast<double>(variance + eps)));
      for (int64_t i = 0; i < c.dim; ++i) {
        const size_t at = static_cast<size_t>(row * c.dim + i);
        want[at] = bf16_to_f32(w[static_cast<size_t>(i)]) * (sum[at] * inv_rms);
      }
    }
    const DeviceBuffer dw = to_device(w), r = to_device(residual);
    DeviceBuffer x = to_device(x0), out(n * 4), in_place = to_device(x0);
    if (add) {
      launch_add_rms_norm(x.as<float>(), r.as<float>(), c.rows, c.dim, dw.as<__nv_bfloat16>(), eps,
                          out.as<float>(), nullptr);
    } else {
      launch_rms_norm(x.as<float>(), c.rows, c.dim, dw.as<__nv_bfloat16>(), eps, out.as<float>(),
                      nullptr);
      launch_rms_norm(in_place.as<float>(), c.rows, c.dim, dw.as<__nv_bfloat16>(), eps,
                      in_place.as<float>(), nullptr);
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(to_host<float>(out, n), want);
    EXPECT_EQ(to_host<float>(x, n), sum) << "the residual stream";
    if (!add) {
      EXPECT_EQ(to_host<float>(in_place, n), want) << "written over x";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Rows, CudaFusedQuant,
                         ::testing::Values(Case{1, 4096, 0}, Case{1, 14336, 0}, Case{3, 256, 0},
                                           Case{6, 300, 4}, Case{9, 4096, 8}, Case{5, 14336, 5},
                                           // not a multiple of 4: the row kernel's path
                                           Case{4, 302, 1},
                                           // many rows of the 8B shape's gating
                                           Case{300, 14336, 128}),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           const Case& c = param_info.param;
                           return "rows" + std::to_string(c.rows) + "_dim" + std::to_string(c.dim) +
                                  "_lt" + std::to_string(c.rows_lt);
                         });

TEST(FusedQuantSupport, RowLengths) {
  EXPECT_TRUE(fused_quant_supports(4096));
  EXPECT_TRUE(fused_quant_supports(16384));
  EXPECT_FALSE(fused_quant_supports(16385));
  EXPECT_FALSE(fused_quant_supports(0));
}

}  // namespace
}  // namespace fp8llm::cuda
