// Activation quantization on the device (per token; per token per 128 columns), bit for bit against
// the host definition with both scale rules, and against the tiny-qwen2 layer fixture (made on the
// CPU with true division). Skipped without a GPU.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/dtype.h"
#include "formats/safetensors.h"
#include "quant/fp8_scheme.h"
#include "test_util.h"

namespace fp8llm::cuda {
namespace {

class CudaActQuant : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

struct Quantized {
  std::vector<uint8_t> q;
  std::vector<float> scales;  // row: [T]; block: [ceil(K/128)][T]
};

// The definition: scale = fp8_scale_from_amax(amax, rule), q = e4m3(clamp(x / scale)).
Quantized host_quantize(Fp8Scheme scheme, const std::vector<float>& x, int64_t t, int64_t k,
                        Fp8ScaleRule rule) {
  Quantized out;
  out.q.resize(x.size());
  const int64_t groups = scheme == Fp8Scheme::Row ? 1 : fp8_block_count(k);
  const int64_t width = scheme == Fp8Scheme::Row ? k : 128;
  out.scales.resize(static_cast<size_t>(groups * t));
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t c0 = g * width;
      const int64_t c1 = std::min(k, c0 + width);
      float amax = 0;
      for (int64_t c = c0; c < c1; ++c) amax = std::fmax(amax, std::fabs(x[r * k + c]));
      const float s = fp8_scale_from_amax(amax, rule);
      out.scales[g * t + r] = s;
      for (int64_t c = c0; c < c1; ++c) {
        const float v = std::fmin(std::fmax(x[r * k + c] / s, -448.0f), 448.0f);
        out.q[r * k + c] = f32_to_e4m3(v);
      }
    }
  }
  return out;
}

// rule unset: the launcher's default.
template <typename T>
Quantized device_quantize(Fp8Scheme scheme, const std::vector<T>& x, int64_t t, int64_t k,
                          std::optional<Fp8ScaleRule> rule = std::nullopt) {
  DeviceBuffer dx = to_device(x);
  DeviceBuffer dq(static_cast<size_t>(t * k));
  const int64_t ns = activation_scale_elems(scheme, t, k);
  DeviceBuffer ds(static_cast<size_t>(ns) * sizeof(float));
  using Elem = std::conditional_t<std::is_same_v<T, float>, float, __nv_bfloat16>;
  if (rule) {
    launch_quantize_activations(scheme, dx.as<Elem>(), t, k, dq.as<uint8_t>(), ds.as<float>(),
                                nullptr, *rule);
  } else {
    launch_quantize_activations(scheme, dx.as<Elem>(), t, k, dq.as<uint8_t>(), ds.as<float>(),
                                nullptr);
  }
  return {to_host<uint8_t>(dq, static_cast<size_t>(t * k)),
          to_host<float>(ds, static_cast<size_t>(ns))};
}

void expect_same(const Quantized& got, const Quantized& want) {
  ASSERT_EQ(got.q.size(), want.q.size());
  for (size_t i = 0; i < want.q.size(); ++i) {
    ASSERT_EQ(got.q[i], want.q[i]) << "element " << i;
  }
  ASSERT_EQ(got.scales.size(), want.scales.size());
  for (size_t i = 0; i < want.scales.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got.scales[i]), std::bit_cast<uint32_t>(want.scales[i]))
        << "scale " << i;
  }
}

// Random bf16 activations with the cases that matter: a zero row, a row whose amax is an outlier,
// subnormal-code values next to large ones, negative zero, values at e4m3 rounding ties.
std::vector<uint16_t> make_activations(int64_t t, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> x(static_cast<size_t>(t * k));
  for (auto& v : x) v = f32_to_bf16(normal(rng) * 3.0f);
  if (t >= 4) {
    for (int64_t c = 0; c < k; ++c) x[0 * k + c] = f32_to_bf16(0.0f);
    x[1 * k + k / 2] = f32_to_bf16(20000.0f);
    for (int64_t c = 0; c < k; c += 3) x[2 * k + c] = f32_to_bf16(normal(rng) * 1e-6f);
    x[2 * k + 1] = 0x8000;  // -0
    // Row 3: amax 448 (scale 1) and exact ties between e4m3 neighbours (e.g. 1.0625 between 1 and
    // 1.125, 17 between 16 and 18).
    x[3 * k] = f32_to_bf16(448.0f);
    for (int64_t c = 1; c < k; ++c) x[3 * k + c] = f32_to_bf16(c % 2 ? 1.0625f : -17.0f);
  }
  return x;
}

TEST_F(CudaActQuant, Bf16MatchesHostDefinition) {
  // Shapes for both kernel forms: K % 8 == 0 (vector row kernel; 16392 is past its register
  // budget and falls back), K % 4 == 0 (vector group kernel), neither.
  for (const auto& [t, k] : {std::pair<int64_t, int64_t>{1, 4096},
                             {5, 200},
                             {37, 192},
                             {16, 4168},
                             {130, 128},
                             {3, 1},
                             {4, 4100},
                             {2, 130},
                             {2, 16392},
                             {3, 14336}}) {
    const auto x = make_activations(t, k, static_cast<uint32_t>(t * 1000 + k));
    std::vector<float> xf(x.size());
    for (size_t i = 0; i < x.size(); ++i) xf[i] = bf16_to_f32(x[i]);
    for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
      for (const Fp8ScaleRule rule : {Fp8ScaleRule::MultiplyByReciprocal, Fp8ScaleRule::Divide}) {
        SCOPED_TRACE(std::to_string(t) + "x" + std::to_string(k) +
                     (scheme == Fp8Scheme::Row ? " row" : " block") +
                     (rule == Fp8ScaleRule::Divide ? " divide" : " reciprocal"));
        expect_same(device_quantize(scheme, x, t, k, rule), host_quantize(scheme, xf, t, k, rule));
      }
    }
  }
}

// fp32 rows of 300 (the vector row kernel: K % 4 == 0), 14336 (its widest form), 4100 and 301
// (the scalar kernel): the same bytes and scales as the definition.
TEST_F(CudaActQuant, Fp32MatchesHostDefinition) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& [t, k] :
       std::vector<std::pair<int64_t, int64_t>>{{9, 300}, {2, 14336}, {3, 4100}, {4, 301}}) {
    SCOPED_TRACE("t " + std::to_string(t) + ", k " + std::to_string(k));
    std::vector<float> x(static_cast<size_t>(t * k));
    for (auto& v : x) v = normal(rng);
    x[5] = 1e-42f;  // denormal input
    x[7] = -3e38f;  // huge: scale near float max
    for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
      for (const Fp8ScaleRule rule : {Fp8ScaleRule::MultiplyByReciprocal, Fp8ScaleRule::Divide}) {
        expect_same(device_quantize(scheme, x, t, k, rule), host_quantize(scheme, x, t, k, rule));
      }
    }
  }
}

// Without a rule the launcher uses the module default (the CPU's): amax * float32(1/448). The
// amaxes here are ones where the product and the quotient differ in the last bit.
TEST_F(CudaActQuant, DefaultRuleIsTheReciprocalProduct) {
  const int64_t t = 64;
  const int64_t k = 256;
  std::vector<float> x(static_cast<size_t>(t * k), 0.5f);
  int differing = 0;
  for (int64_t r = 0; r < t; ++r) {
    x[r * k] = 1.0f + 0.37f * static_cast<float>(r);
    differing += fp8_scale_from_amax(x[r * k], Fp8ScaleRule::Divide) !=
                 fp8_scale_from_amax(x[r * k], Fp8ScaleRule::MultiplyByReciprocal);
  }
  ASSERT_GT(differing, 0);
  for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    expect_same(device_quantize(scheme, x, t, k),
                host_quantize(scheme, x, t, k, Fp8ScaleRule::MultiplyByReciprocal));
  }
}

// tests/data/tiny-qwen2/linear_reference.safetensors: fp32 inputs (an all-zero row; huge, tiny
// and subnormal entries in row 6) with their reference codes and scales.
TEST_F(CudaActQuant, MatchesTinyQwen2LayerFixture) {
  const auto ref =
      SafetensorsFile::open(test::data_path("tiny-qwen2/linear_reference.safetensors"));
  int checked = 0;
  for (const std::string layer :
       {"model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj"}) {
    const TensorView xv = ref->view(layer + ".x");
    const int64_t t = xv.shape.at(0);
    const int64_t k = xv.shape.at(1);
    std::vector<float> x(static_cast<size_t>(t * k));
    std::memcpy(x.data(), xv.data, x.size() * sizeof(float));
    for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
      const std::string mode = scheme == Fp8Scheme::Row ? "row" : "block";
      SCOPED_TRACE(layer + " " + mode);
      const Quantized got = device_quantize(scheme, x, t, k, Fp8ScaleRule::Divide);
      const TensorView want_q = ref->view(layer + "." + mode + ".x_fp8");
      ASSERT_EQ(want_q.nbytes, got.q.size());
      EXPECT_EQ(std::memcmp(want_q.data, got.q.data(), got.q.size()), 0);
      // The fixture's scales are [T, groups]; the device layout is [groups][T].
      const TensorView want_s = ref->view(layer + "." + mode + ".x_scale");
      const int64_t groups = want_s.shape.at(1);
      ASSERT_EQ(static_cast<size_t>(t * groups), got.scales.size());
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          ASSERT_EQ(std::bit_cast<uint32_t>(got.scales[g * t + r]),
                    std::bit_cast<uint32_t>(want_s.as<float>()[r * groups + g]))
              << r << "," << g;
        }
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4);
}

TEST_F(CudaActQuant, DequantizeIsCodeTimesScale) {
  const int64_t t = 7;
  const int64_t k = 333;
  const auto x = make_activations(t, k, 3);
  for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    const Quantized qz = device_quantize(scheme, x, t, k);
    DeviceBuffer dq = to_device(qz.q);
    DeviceBuffer ds = to_device(qz.scales);
    DeviceBuffer out(static_cast<size_t>(t * k) * sizeof(float));
    launch_dequantize_activations(scheme, dq.as<uint8_t>(), ds.as<float>(), t, k, out.as<float>(),
                                  nullptr);
    const auto got = to_host<float>(out, static_cast<size_t>(t * k));
    for (int64_t r = 0; r < t; ++r) {
      for (int64_t c = 0; c < k; ++c) {
        const float s = scheme == Fp8Scheme::Row ? qz.scales[r] : qz.scales[(c / 128) * t + r];
        ASSERT_EQ(got[r * k + c], e4m3_to_f32(qz.q[r * k + c]) * s);
      }
    }
  }
}

}  // namespace
}  // namespace fp8llm::cuda
