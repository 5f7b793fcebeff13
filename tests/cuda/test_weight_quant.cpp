// Weight quantization on the device: byte for byte equal to the reference checkpoints
// (tests/data/<model>/expected_fp8_{row,block}.safetensors) and to the host definition, the e4m3
// encoder equal to the host one, and non-finite weights rejected by name. Skipped without a GPU.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/loading/weight_quantizer.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/dtype.h"
#include "core/error.h"
#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace fp8llm::cuda {
namespace {

class CudaWeightQuant : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

struct DeviceQuantized {
  std::vector<uint8_t> q;
  std::vector<float> scales;  // with the given leading dimension (block)
};

DeviceQuantized quantize_on_device(Fp8Scheme scheme, const std::vector<uint16_t>& w, int64_t n,
                                   int64_t k, int64_t scale_ld, const std::string& name) {
  DeviceBuffer dw = to_device(w);
  DeviceBuffer dq(static_cast<size_t>(n * k));
  const int64_t scale_elems = weight_scale_elems(scheme, n, k, scale_ld);
  DeviceBuffer ds(static_cast<size_t>(scale_elems) * sizeof(float));
  ds.fill_zero();
  DeviceWeightQuantizer quantizer;
  quantizer.quantize(scheme, dw.as<__nv_bfloat16>(), n, k, dq.as<uint8_t>(), ds.as<float>(),
                     scale_ld, name, nullptr);
  return {to_host<uint8_t>(dq, static_cast<size_t>(n * k)),
          to_host<float>(ds, static_cast<size_t>(scale_elems))};
}

std::vector<uint16_t> bf16_of(const TensorView& v) {
  std::vector<uint16_t> out(static_cast<size_t>(v.numel()));
  std::memcpy(out.data(), v.data, out.size() * 2);
  return out;
}

// Quantizes every FP8 weight of the expected checkpoint from the model's BF16 weights on the
// device and compares bytes and scale bits; counts the weights compared in *compared.
void check_model_fixture(const std::string& model, Fp8Scheme scheme, bool padded_ld,
                         int* compared) {
  const auto ckpt = Checkpoint::open(test::data_path(model));
  const auto expected = SafetensorsFile::open(
      test::data_path(model + (scheme == Fp8Scheme::Row ? "/expected_fp8_row.safetensors"
                                                        : "/expected_fp8_block.safetensors")));
  *compared = 0;
  for (const TensorInfo& info : expected->tensors()) {
    if (info.dtype != DType::F8_E4M3) continue;
    SCOPED_TRACE(info.name);
    const TensorView src = ckpt.view(info.name);
    EXPECT_EQ(src.dtype, DType::BF16);
    EXPECT_EQ(src.shape, info.shape);
    const int64_t n = info.shape.at(0);
    const int64_t k = info.shape.at(1);
    const int64_t kb = fp8_block_count(k);
    const int64_t ld = padded_ld ? device_block_scale_ld(k) : kb;
    const DeviceQuantized got = quantize_on_device(scheme, bf16_of(src), n, k, ld, info.name);

    const TensorView want_q = expected->view(info);
    const auto* wq = want_q.as<uint8_t>();
    int64_t first_bad = -1;
    for (int64_t i = 0; i < n * k && first_bad < 0; ++i) {
      if (got.q[i] != wq[i]) first_bad = i;
    }
    EXPECT_EQ(first_bad, -1) << "first differing byte at [" << first_bad / k << ", "
                             << first_bad % k << "]: got 0x" << std::hex << int(got.q[first_bad])
                             << " want 0x" << int(wq[first_bad]);

    const std::string scale_name = info.name + (scheme == Fp8Scheme::Row ? "_scale" : "_scale_inv");
    const TensorView want_s = expected->view(scale_name);
    const auto* ws = want_s.as<float>();
    if (scheme == Fp8Scheme::Row) {
      ASSERT_EQ(want_s.numel(), n);
      for (int64_t r = 0; r < n; ++r) {
        ASSERT_EQ(std::bit_cast<uint32_t>(got.scales[r]), std::bit_cast<uint32_t>(ws[r]))
            << "row " << r;
      }
    } else {
      ASSERT_EQ(want_s.numel(), fp8_block_count(n) * kb);
      for (int64_t rb = 0; rb < fp8_block_count(n); ++rb) {
        for (int64_t cb = 0; cb < kb; ++cb) {
          ASSERT_EQ(std::bit_cast<uint32_t>(got.scales[rb * ld + cb]),
                    std::bit_cast<uint32_t>(ws[rb * kb + cb]))
              << "tile [" << rb << ", " << cb << "]";
        }
      }
    }
    ++*compared;
  }
}

int fixture_weights_matched(const std::string& model, Fp8Scheme scheme, bool padded_ld) {
  int compared = 0;
  check_model_fixture(model, scheme, padded_ld, &compared);
  return ::testing::Test::HasFailure() ? -1 : compared;
}

TEST_F(CudaWeightQuant, TinyLlamaRowMatchesReferenceCheckpoint) {
  EXPECT_EQ(fixture_weights_matched("tiny-llama", Fp8Scheme::Row, false), 14);
}
TEST_F(CudaWeightQuant, TinyLlamaBlockMatchesReferenceCheckpoint) {
  EXPECT_EQ(fixture_weights_matched("tiny-llama", Fp8Scheme::Block, false), 14);
  EXPECT_EQ(fixture_weights_matched("tiny-llama", Fp8Scheme::Block, true), 14);
}
TEST_F(CudaWeightQuant, TinyQwen2RowMatchesReferenceCheckpoint) {
  EXPECT_EQ(fixture_weights_matched("tiny-qwen2", Fp8Scheme::Row, false), 21);
}
TEST_F(CudaWeightQuant, TinyQwen2BlockMatchesReferenceCheckpoint) {
  // Dimensions 192 and 200: partial 128x128 tiles, and a padded scale row (ceil(200/128) = 2 -> 4).
  EXPECT_EQ(fixture_weights_matched("tiny-qwen2", Fp8Scheme::Block, false), 21);
  EXPECT_EQ(fixture_weights_matched("tiny-qwen2", Fp8Scheme::Block, true), 21);
}

// The host definition, written out: weight scale amax * float32(1/448), true division, clamp, RNE.
DeviceQuantized host_reference(Fp8Scheme scheme, const std::vector<uint16_t>& w, int64_t n,
                               int64_t k) {
  const float inverse_max = 1.0f / 448.0f;
  const auto scale_of = [&](float amax) { return amax == 0.0f ? 1.0f : amax * inverse_max; };
  const auto quant = [](float x, float s) {
    float v = x / s;
    v = std::fmin(std::fmax(v, -448.0f), 448.0f);
    return f32_to_e4m3(v);
  };
  DeviceQuantized out;
  out.q.resize(static_cast<size_t>(n * k));
  if (scheme == Fp8Scheme::Row) {
    for (int64_t r = 0; r < n; ++r) {
      float amax = 0;
      for (int64_t c = 0; c < k; ++c) amax = std::fmax(amax, std::fabs(bf16_to_f32(w[r * k + c])));
      const float s = scale_of(amax);
      out.scales.push_back(s);
      for (int64_t c = 0; c < k; ++c) out.q[r * k + c] = quant(bf16_to_f32(w[r * k + c]), s);
    }
    return out;
  }
  const int64_t nb = fp8_block_count(n);
  const int64_t kb = fp8_block_count(k);
  out.scales.resize(static_cast<size_t>(nb * kb));
  for (int64_t rb = 0; rb < nb; ++rb) {
    for (int64_t cb = 0; cb < kb; ++cb) {
      float amax = 0;
      for (int64_t r = rb * 128; r < std::min(n, rb * 128 + 128); ++r) {
        for (int64_t c = cb * 128; c < std::min(k, cb * 128 + 128); ++c) {
          amax = std::fmax(amax, std::fabs(bf16_to_f32(w[r * k + c])));
        }
      }
      const float s = scale_of(amax);
      out.scales[rb * kb + cb] = s;
      for (int64_t r = rb * 128; r < std::min(n, rb * 128 + 128); ++r) {
        for (int64_t c = cb * 128; c < std::min(k, cb * 128 + 128); ++c) {
          out.q[r * k + c] = quant(bf16_to_f32(w[r * k + c]), s);
        }
      }
    }
  }
  return out;
}

TEST_F(CudaWeightQuant, RandomWeightsMatchHostDefinition) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& [n, k] :
       {std::pair<int64_t, int64_t>{300, 1000}, {1, 7}, {129, 129}, {64, 4096}}) {
    std::vector<uint16_t> w(static_cast<size_t>(n * k));
    for (auto& v : w) v = f32_to_bf16(normal(rng) * 0.05f);
    // A row of zeros (scale 1), a row of tiny values (subnormal codes), a huge value.
    if (n > 3) {
      for (int64_t c = 0; c < k; ++c) w[1 * k + c] = f32_to_bf16(0.0f);
      for (int64_t c = 0; c < k; ++c) w[2 * k + c] = f32_to_bf16(normal(rng) * 1e-30f);
      w[3 * k] = f32_to_bf16(-3.0e38f);
    }
    for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
      SCOPED_TRACE(std::to_string(n) + "x" + std::to_string(k) +
                   (scheme == Fp8Scheme::Row ? " row" : " block"));
      const DeviceQuantized want = host_reference(scheme, w, n, k);
      const DeviceQuantized got = quantize_on_device(scheme, w, n, k, fp8_block_count(k), "w");
      EXPECT_EQ(got.q, want.q);
      ASSERT_EQ(got.scales.size(), want.scales.size());
      for (size_t i = 0; i < want.scales.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(got.scales[i]), std::bit_cast<uint32_t>(want.scales[i]))
            << i;
      }
    }
  }
}

TEST_F(CudaWeightQuant, NonFiniteWeightIsAnErrorNamingTheTensor) {
  const int64_t n = 130;
  const int64_t k = 260;
  for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
      std::vector<uint16_t> w(static_cast<size_t>(n * k), f32_to_bf16(0.5f));
      w[129 * k + 259] = f32_to_bf16(bad);
      try {
        quantize_on_device(scheme, w, n, k, fp8_block_count(k),
                           "model.layers.3.mlp.up_proj.weight");
        FAIL() << "no error for " << bad;
      } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("model.layers.3.mlp.up_proj.weight"), std::string::npos) << msg;
        EXPECT_NE(msg.find("NaN or infinity"), std::string::npos) << msg;
      }
    }
  }
  // The flag is cleared for the next tensor.
  std::vector<uint16_t> good(static_cast<size_t>(n * k), f32_to_bf16(0.25f));
  EXPECT_NO_THROW(quantize_on_device(Fp8Scheme::Row, good, n, k, 1, "good"));
}

TEST_F(CudaWeightQuant, BadShapesAreErrorsNamingTheTensor) {
  DeviceWeightQuantizer quantizer;
  DeviceBuffer buf(1024);
  try {
    quantizer.quantize(Fp8Scheme::Row, buf.as<__nv_bfloat16>(), 0, 16, buf.as<uint8_t>(),
                       buf.as<float>(), 1, "empty.weight", nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty.weight"), std::string::npos) << e.what();
  }
  try {
    quantizer.quantize(Fp8Scheme::Block, buf.as<__nv_bfloat16>(), 4, 300, buf.as<uint8_t>(),
                       buf.as<float>(), 2, "narrow.weight", nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("narrow.weight"), std::string::npos) << e.what();
  }
}

TEST_F(CudaWeightQuant, DequantizeIsCodeTimesScale) {
  const int64_t n = 200;
  const int64_t k = 300;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<uint16_t> w(static_cast<size_t>(n * k));
  for (auto& v : w) v = f32_to_bf16(u(rng));
  for (const Fp8Scheme scheme : {Fp8Scheme::Row, Fp8Scheme::Block}) {
    const int64_t ld = scheme == Fp8Scheme::Row ? 1 : device_block_scale_ld(k);
    const DeviceQuantized qz = quantize_on_device(scheme, w, n, k, ld, "w");
    DeviceBuffer dq = to_device(qz.q);
    DeviceBuffer ds = to_device(qz.scales);
    DeviceBuffer out(static_cast<size_t>(n * k) * sizeof(float));
    launch_dequantize_weight(scheme, dq.as<uint8_t>(), ds.as<float>(), ld, n, k, out.as<float>(),
                             nullptr);
    const auto got = to_host<float>(out, static_cast<size_t>(n * k));
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < k; ++c) {
        const float s =
            scheme == Fp8Scheme::Row ? qz.scales[r] : qz.scales[(r / 128) * ld + c / 128];
        ASSERT_EQ(got[r * k + c], e4m3_to_f32(qz.q[r * k + c]) * s) << r << "," << c;
      }
    }
  }
}

TEST_F(CudaWeightQuant, DeviceE4m3EncoderMatchesHost) {
  std::vector<float> in;
  // Every e4m3 value, the midpoints between neighbours and one float step either side of them.
  std::vector<float> codes;
  for (int b = 0; b < 0x7F; ++b) codes.push_back(e4m3_to_f32(static_cast<uint8_t>(b)));
  for (size_t i = 0; i < codes.size(); ++i) {
    for (const float sign : {1.0f, -1.0f}) {
      in.push_back(sign * codes[i]);
      if (i + 1 < codes.size()) {
        const float mid = 0.5f * (codes[i] + codes[i + 1]);
        in.push_back(sign * mid);
        in.push_back(sign * std::nextafter(mid, 0.0f));
        in.push_back(sign * std::nextafter(mid, 1000.0f));
      }
    }
  }
  in.push_back(448.0f);
  in.push_back(-448.0f);
  in.push_back(-0.0f);
  in.push_back(1e-45f);
  in.push_back(-1e-30f);
  // Random values over the quantizer's domain, which the clamp limits to [-448, 448]: uniform, and
  // log-uniform down to far below the smallest subnormal code.
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> u(-448.0f, 448.0f);
  std::uniform_real_distribution<float> e(-40.0f, std::log2(448.0f));
  for (int i = 0; i < 1 << 20; ++i) {
    in.push_back(i % 2 ? u(rng) : std::copysign(std::exp2(e(rng)), u(rng)));
  }
  DeviceBuffer din = to_device(in);
  DeviceBuffer dout(in.size());
  launch_float_to_e4m3(din.as<float>(), dout.as<uint8_t>(), static_cast<int64_t>(in.size()),
                       nullptr);
  const auto got = to_host<uint8_t>(dout, in.size());
  int mismatches = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (got[i] != f32_to_e4m3(in[i]) && ++mismatches < 10) {
      ADD_FAILURE() << "x = " << in[i] << " (0x" << std::hex << std::bit_cast<uint32_t>(in[i])
                    << "): device 0x" << int(got[i]) << ", host 0x" << int(f32_to_e4m3(in[i]));
    }
  }
  EXPECT_EQ(mismatches, 0);

  // Outside that domain the encoders differ by design: the device saturates to +-448, the host
  // encoder returns NaN (as PyTorch does). The quantizer clamps first, so it never sees the case.
  const std::vector<float> big = {464.0f, 500.0f, -1e6f};
  DeviceBuffer dbig = to_device(big);
  DeviceBuffer dbig_out(big.size());
  launch_float_to_e4m3(dbig.as<float>(), dbig_out.as<uint8_t>(), 3, nullptr);
  EXPECT_EQ(to_host<uint8_t>(dbig_out, 3), (std::vector<uint8_t>{0x7E, 0x7E, 0xFE}));
  EXPECT_EQ(f32_to_e4m3(500.0f), 0x7F);
}

}  // namespace
}  // namespace fp8llm::cuda
