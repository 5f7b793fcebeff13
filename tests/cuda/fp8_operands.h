// FP8 operands of the GEMM tests on the device, with host copies to compute references from:
// weights quantized by the loader's own quantizer, activations by the kernels the backend uses.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "backend/cuda/gemm/fp8_linear.h"
#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/loading/weight_quantizer.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "core/dtype.h"

namespace fp8llm::cuda {

inline const char* name_of(Fp8Scheme s) {
  return s == Fp8Scheme::Row ? "row" : "block";
}

inline std::vector<uint16_t> random_bf16(int64_t rows, int64_t cols, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    // Rows of different magnitudes, so that per-row and per-block scales differ.
    const float row_scale = scale * std::exp2(static_cast<float>(r % 7) - 3.0f);
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = f32_to_bf16(normal(rng) * row_scale);
  }
  return out;
}

// An FP8 weight on the device plus host copies of its codes and scales.
struct Weight {
  Fp8Scheme scheme;
  int64_t n;
  int64_t k;
  int64_t ld;
  DeviceBuffer q;
  DeviceBuffer s;
  DeviceBuffer bias;
  std::vector<uint8_t> hq;
  std::vector<float> hs;
  std::vector<uint16_t> hbias;

  Fp8DeviceWeight view() const {
    return {scheme,
            q.as<uint8_t>(),
            s.as<float>(),
            ld,
            n,
            k,
            hbias.empty() ? nullptr : bias.as<__nv_bfloat16>()};
  }
  double deq(int64_t r, int64_t c) const {
    const float sc = scheme == Fp8Scheme::Row ? hs[r] : hs[(r / 128) * ld + c / 128];
    return static_cast<double>(e4m3_to_f32(hq[r * k + c])) * sc;
  }
};

inline Weight make_weight(Fp8Scheme scheme, const std::vector<uint16_t>& w, int64_t n, int64_t k,
                          const std::vector<uint16_t>& bias = {}) {
  Weight out{scheme, n,  k,   scheme == Fp8Scheme::Row ? 1 : device_block_scale_ld(k), {}, {}, {},
             {},     {}, bias};
  DeviceBuffer dw = to_device(w);
  out.q = DeviceBuffer(static_cast<size_t>(n * k));
  const int64_t ns = weight_scale_elems(scheme, n, k, out.ld);
  out.s = DeviceBuffer(static_cast<size_t>(ns) * sizeof(float));
  out.s.fill_zero();
  DeviceWeightQuantizer().quantize(scheme, dw.as<__nv_bfloat16>(), n, k, out.q.as<uint8_t>(),
                                   out.s.as<float>(), out.ld, "w", nullptr);
  out.hq = to_host<uint8_t>(out.q, static_cast<size_t>(n * k));
  out.hs = to_host<float>(out.s, static_cast<size_t>(ns));
  if (!bias.empty()) out.bias = to_device(bias);
  return out;
}

// Quantized activations on the device (layouts of fp8_quant.h) plus host copies.
struct Acts {
  Fp8Scheme scheme;
  int64_t m;
  int64_t k;
  DeviceBuffer q;
  DeviceBuffer s;
  std::vector<uint8_t> hq;
  std::vector<float> hs;
  double deq(int64_t r, int64_t c) const {
    const float sc = scheme == Fp8Scheme::Row ? hs[r] : hs[(c / 128) * m + r];
    return static_cast<double>(e4m3_to_f32(hq[r * k + c])) * sc;
  }
};

template <typename T>
Acts make_acts(Fp8Scheme scheme, const std::vector<T>& x, int64_t m, int64_t k) {
  Acts a{scheme, m, k, DeviceBuffer(static_cast<size_t>(m * k)), {}, {}, {}};
  const int64_t ns = activation_scale_elems(scheme, m, k);
  a.s = DeviceBuffer(static_cast<size_t>(ns) * sizeof(float));
  DeviceBuffer dx = to_device(x);
  if constexpr (std::is_same_v<T, float>) {
    launch_quantize_activations(scheme, dx.as<float>(), m, k, a.q.as<uint8_t>(), a.s.as<float>(),
                                nullptr);
  } else {
    launch_quantize_activations(scheme, dx.as<__nv_bfloat16>(), m, k, a.q.as<uint8_t>(),
                                a.s.as<float>(), nullptr);
  }
  a.hq = to_host<uint8_t>(a.q, static_cast<size_t>(m * k));
  a.hs = to_host<float>(a.s, static_cast<size_t>(ns));
  return a;
}

// fp32 output [m, n], poisoned with NaN.
inline DeviceBuffer poisoned_output_f32(int64_t m, int64_t n) {
  DeviceBuffer y(static_cast<size_t>(m * n) * sizeof(float));
  std::vector<float> nan(static_cast<size_t>(m * n), NAN);
  y.upload(nan.data(), nan.size() * sizeof(float));
  return y;
}

}  // namespace fp8llm::cuda
