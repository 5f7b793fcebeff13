#include "quant/quantizer.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>

#include "core/error.h"
#include "core/thread_pool.h"
#include "quant/e4m3_table.h"
#include "quant/fp8_encode.h"

namespace fp8llm {
namespace {

using fp8_encode::encode_finite;
using fp8_encode::encode_scaled_any;
using fp8_encode::max_abs_bits;

// Elements per parallel chunk below which threading costs more than it saves.
constexpr int64_t kGrainElements = 1 << 15;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// The first non-finite weight element in row-major order, over all threads: each chunk reports
// the first one it sees (chunks scan in order), and the smallest index wins, so the error names
// the same element whatever the thread count.
class FirstNonFinite {
 public:
  void offer(int64_t index, bool is_nan) {
    std::lock_guard lock(mu_);
    if (index_ < 0 || index < index_) {
      index_ = index;
      is_nan_ = is_nan;
    }
  }
  void raise_if_found(std::string_view tensor_name, int64_t k) const {
    if (index_ < 0) return;
    fail("{}: contains {} at [{}, {}]; refusing to quantize", tensor_name, is_nan_ ? "NaN" : "Inf",
         index_ / k, index_ % k);
  }

 private:
  std::mutex mu_;
  int64_t index_ = -1;
  bool is_nan_ = false;
};

// Reports the first non-finite element of p[0, n) (which must hold one) as element `base + i`.
template <class Src>
void report_first_non_finite(const typename Src::Bits* p, int64_t n, int64_t base,
                             FirstNonFinite& found) {
  for (int64_t i = 0; i < n; ++i) {
    const auto a = static_cast<typename Src::Bits>(p[i] & Src::kAbsMask);
    if (a >= Src::kInfBits) {
      found.offer(base + i, a > Src::kInfBits);
      return;
    }
  }
}

template <class Src>
void quantize_rows(const typename Src::Bits* w, int64_t n, int64_t k, uint8_t* q, float* scales,
                   Fp8ScaleRule rule, FirstNonFinite& found) {
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(k, 1));
  parallel_for(static_cast<size_t>(n), static_cast<size_t>(grain), [&](size_t begin, size_t end) {
    for (auto r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
      const typename Src::Bits* row = w + r * k;
      const auto amax_bits = max_abs_bits<Src>(row, k);
      if (amax_bits >= Src::kInfBits) {
        report_first_non_finite<Src>(row, k, r * k, found);
        return;
      }
      const float scale = fp8_scale_from_amax(Src::to_f32(amax_bits), rule);
      scales[r] = scale;
      encode_finite<Src>(row, k, scale, q + r * k);
    }
  });
}

template <class Src>
void quantize_blocks(const typename Src::Bits* w, int64_t n, int64_t k, uint8_t* q, float* scales,
                     Fp8ScaleRule rule, FirstNonFinite& found) {
  constexpr int64_t B = kFp8BlockSize;
  const int64_t row_blocks = ceil_div(n, B), col_blocks = ceil_div(k, B);
  parallel_for(static_cast<size_t>(row_blocks), 1, [&](size_t begin, size_t end) {
    std::vector<typename Src::Bits> tile_amax(static_cast<size_t>(col_blocks));
    for (auto rb = static_cast<int64_t>(begin); rb < static_cast<int64_t>(end); ++rb) {
      const int64_t r0 = rb * B, r1 = std::min(n, r0 + B);
      std::fill(tile_amax.begin(), tile_amax.end(), 0);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t cb = 0; cb < col_blocks; ++cb) {
          const int64_t c0 = cb * B, len = std::min(k, c0 + B) - c0;
          const auto m = max_abs_bits<Src>(w + r * k + c0, len);
          tile_amax[cb] = std::max(tile_amax[cb], m);
        }
      }
      if (*std::max_element(tile_amax.begin(), tile_amax.end()) >= Src::kInfBits) {
        report_first_non_finite<Src>(w + r0 * k, (r1 - r0) * k, r0 * k, found);
        return;
      }
      float* block_scales = scales + rb * col_blocks;
      for (int64_t cb = 0; cb < col_blocks; ++cb) {
        block_scales[cb] = fp8_scale_from_amax(Src::to_f32(tile_amax[cb]), rule);
      }
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t cb = 0; cb < col_blocks; ++cb) {
          const int64_t c0 = cb * B, len = std::min(k, c0 + B) - c0;
          encode_finite<Src>(w + r * k + c0, len, block_scales[cb], q + r * k + c0);
        }
      }
    }
  });
}

template <class Src>
void quantize_typed(Fp8Scheme scheme, const TensorView& w, uint8_t* q, float* scales,
                    std::string_view tensor_name, Fp8ScaleRule rule) {
  const int64_t n = w.shape[0], k = w.shape[1];
  const auto* bits = w.as<typename Src::Bits>();
  FirstNonFinite found;
  if (scheme == Fp8Scheme::Row) {
    quantize_rows<Src>(bits, n, k, q, scales, rule, found);
  } else {
    quantize_blocks<Src>(bits, n, k, q, scales, rule, found);
  }
  found.raise_if_found(tensor_name, k);
}

void check_weight(const TensorView& w, std::string_view tensor_name) {
  if (w.shape.size() != 2) {
    fail("{}: cannot quantize a tensor of shape {}; FP8 weights must be 2-D", tensor_name,
         shape_str(w.shape));
  }
  if (w.shape[0] < 0 || w.shape[1] < 0) {
    fail("{}: invalid shape {}", tensor_name, shape_str(w.shape));
  }
  if (w.dtype != DType::BF16 && w.dtype != DType::F16 && w.dtype != DType::F32) {
    fail("{}: cannot quantize {} weights; expected BF16, F16 or F32", tensor_name,
         dtype_name(w.dtype));
  }
  const auto expected = static_cast<size_t>(w.numel()) * dtype_size(w.dtype);
  if (w.nbytes != expected) {
    fail("{}: {} bytes for a {} tensor of shape {} (expected {})", tensor_name, w.nbytes,
         dtype_name(w.dtype), shape_str(w.shape), expected);
  }
}

// Quantizes one group x[0, n) of activations with its own scale, stored to *scale.
void quantize_activation_group(const float* x, int64_t n, uint8_t* q, float* scale,
                               Fp8ScaleRule rule) {
  using fp8_encode::F32;
  const auto* bits = reinterpret_cast<const uint32_t*>(x);
  const uint32_t amax_bits = max_abs_bits<F32>(bits, n);
  // Non-finite input propagates as in the reference: a NaN makes amax (and so every code) NaN;
  // an infinity makes the scale infinite.
  const float amax = F32::to_f32(amax_bits);
  *scale = fp8_scale_from_amax(amax, rule);
  if (amax_bits < F32::kInfBits) {
    encode_finite<F32>(bits, n, *scale, q);
  } else {
    encode_scaled_any<F32>(bits, n, *scale, q);
  }
}

}  // namespace

void quantize_weight(Fp8Scheme scheme, const TensorView& w, uint8_t* q, float* scales,
                     std::string_view tensor_name, Fp8ScaleRule rule) {
  check_weight(w, tensor_name);
  switch (w.dtype) {
    case DType::BF16:
      return quantize_typed<fp8_encode::Bf16>(scheme, w, q, scales, tensor_name, rule);
    case DType::F16:
      return quantize_typed<fp8_encode::F16>(scheme, w, q, scales, tensor_name, rule);
    default:
      return quantize_typed<fp8_encode::F32>(scheme, w, q, scales, tensor_name, rule);
  }
}

QuantizedTensor quantize_weight(Fp8Scheme scheme, const TensorView& w, std::string_view tensor_name,
                                Fp8ScaleRule rule) {
  check_weight(w, tensor_name);
  const int64_t n = w.shape[0], k = w.shape[1];
  QuantizedTensor out{HostTensor(DType::F8_E4M3, {n, k}),
                      HostTensor(DType::F32, weight_scale_shape(scheme, n, k))};
  quantize_weight(scheme, w, out.q.as<uint8_t>(), out.scale.as<float>(), tensor_name, rule);
  return out;
}

void dequantize_weight(Fp8Scheme scheme, const uint8_t* q, const float* scales, int64_t n,
                       int64_t k, float* out) {
  const auto& values = e4m3_values();
  const int64_t col_blocks = ceil_div(k, kFp8BlockSize);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(k, 1));
  parallel_for(static_cast<size_t>(n), static_cast<size_t>(grain), [&](size_t begin, size_t end) {
    for (auto r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
      const uint8_t* qr = q + r * k;
      float* o = out + r * k;
      if (scheme == Fp8Scheme::Row) {
        const float s = scales[r];
        for (int64_t c = 0; c < k; ++c) o[c] = values[qr[c]] * s;
      } else {
        const float* s = scales + (r / kFp8BlockSize) * col_blocks;
        for (int64_t c = 0; c < k; ++c) o[c] = values[qr[c]] * s[c / kFp8BlockSize];
      }
    }
  });
}

void quantize_activations(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, uint8_t* q,
                          float* scales, Fp8ScaleRule rule) {
  // Row mode: one group spanning the row (even an empty one, whose scale is 1).
  const int64_t group = scheme == Fp8Scheme::Row ? k : kFp8BlockSize;
  const int64_t groups = scheme == Fp8Scheme::Row ? 1 : ceil_div(k, kFp8BlockSize);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(k, 1));
  parallel_for(static_cast<size_t>(t), static_cast<size_t>(grain), [&](size_t begin, size_t end) {
    for (auto r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t c0 = g * group, len = std::min(k, c0 + group) - c0;
        quantize_activation_group(x + r * k + c0, len, q + r * k + c0, scales + r * groups + g,
                                  rule);
      }
    }
  });
}

}  // namespace fp8llm
