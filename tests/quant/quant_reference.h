// A slow, obviously correct implementation of the FP8 definition, one element at a time, for the
// quantizer and linear-layer tests to compare against.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "quant/fp8_scheme.h"

namespace fp8llm::test {

// The scale: amax times the float32 reciprocal of 448 (Fp8ScaleRule::MultiplyByReciprocal), or
// the true quotient (Fp8ScaleRule::Divide).
inline float ref_scale(float amax) {
  const float inverse = 1.0f / 448.0f;
  return amax == 0.0f ? 1.0f : amax * inverse;
}
inline float ref_scale_divide(float amax) {
  return amax == 0.0f ? 1.0f : amax / 448.0f;
}

// e4m3_rne(clamp(x / s, -448, 448)); NaN stays NaN.
inline uint8_t ref_quantize(float x, float s) {
  float v = x / s;
  if (!std::isnan(v)) v = std::clamp(v, -448.0f, 448.0f);
  return f32_to_e4m3(v);
}

// Quantizes w [n, k] (given as float32 values) per the scheme: codes and scales. An activation
// row is quantized like a one-row weight (its block tiles being 1x128).
struct RefQuantized {
  std::vector<uint8_t> q;
  std::vector<float> scale;
};
inline RefQuantized ref_quantize_weight(Fp8Scheme scheme, const std::vector<float>& w, int64_t n,
                                        int64_t k, float (*scale_of)(float) = ref_scale) {
  const int64_t bn = scheme == Fp8Scheme::Row ? 1 : 128;
  const int64_t bk = scheme == Fp8Scheme::Row ? std::max<int64_t>(k, 1) : 128;
  const int64_t gn = (n + bn - 1) / bn, gk = scheme == Fp8Scheme::Row ? 1 : (k + bk - 1) / bk;
  RefQuantized out{std::vector<uint8_t>(static_cast<size_t>(n * k)),
                   std::vector<float>(static_cast<size_t>(gn * gk))};
  for (int64_t i = 0; i < gn; ++i) {
    for (int64_t j = 0; j < gk; ++j) {
      float amax = 0;
      for (int64_t r = i * bn; r < std::min(n, (i + 1) * bn); ++r) {
        for (int64_t c = j * bk; c < std::min(k, (j + 1) * bk); ++c) {
          amax = std::max(amax, std::fabs(w[r * k + c]));
        }
      }
      const float s = scale_of(amax);
      out.scale[i * gk + j] = s;
      for (int64_t r = i * bn; r < std::min(n, (i + 1) * bn); ++r) {
        for (int64_t c = j * bk; c < std::min(k, (j + 1) * bk); ++c) {
          out.q[r * k + c] = ref_quantize(w[r * k + c], s);
        }
      }
    }
  }
  return out;
}

}  // namespace fp8llm::test
