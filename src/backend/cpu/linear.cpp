#include "backend/cpu/linear.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "quant/e4m3_table.h"
#include "quant/quantizer.h"

namespace fp8llm::cpu {
namespace {

constexpr int64_t W = kGemmPanelWidth;

// A decoder for weights stored row-major [n, k] in a type that converts to float32 one element at
// a time (the conversion must be exact).
template <class T, class ToFloat>
PanelDecoder dense_decoder(const T* w, int64_t k, ToFloat to_float) {
  return [=](int64_t n0, int64_t rows, int64_t k0, int64_t depth, float* panel) {
    for (int64_t j = 0; j < rows; ++j) {
      const T* src = w + (n0 + j) * k + k0;
      for (int64_t kk = 0; kk < depth; ++kk) panel[kk * W + j] = to_float(src[kk]);
    }
  };
}

// deq(W) = float32(q) * s with the scale of the element's row (row) or 128x128 tile (block).
PanelDecoder fp8_decoder(Fp8Scheme scheme, const uint8_t* wq, const float* wscale, int64_t k) {
  const int64_t col_blocks = (k + kFp8BlockSize - 1) / kFp8BlockSize;
  return [=](int64_t n0, int64_t rows, int64_t k0, int64_t depth, float* panel) {
    const float* values = e4m3_values().data();
    for (int64_t j = 0; j < rows; ++j) {
      const int64_t r = n0 + j;
      const uint8_t* src = wq + r * k + k0;
      // A panel starts on a 128-column boundary (kGemmPanelDepth is a multiple of 128), so each
      // 128-column step below has one scale.
      for (int64_t c0 = 0; c0 < depth; c0 += kFp8BlockSize) {
        const int64_t c1 = std::min(depth, c0 + kFp8BlockSize);
        const float s = scheme == Fp8Scheme::Row
                            ? wscale[r]
                            : wscale[(r / kFp8BlockSize) * col_blocks + (k0 + c0) / kFp8BlockSize];
        for (int64_t kk = c0; kk < c1; ++kk) panel[kk * W + j] = values[src[kk]] * s;
      }
    }
  };
}
static_assert(kGemmPanelDepth % kFp8BlockSize == 0);

// deq(x) for quantized activations, as float32 [t, k].
std::vector<float> dequantize_activations(Fp8Scheme scheme, const uint8_t* xq, const float* xscale,
                                          int64_t t, int64_t k) {
  std::vector<float> out(static_cast<size_t>(t * k));
  const float* values = e4m3_values().data();
  const int64_t groups = scheme == Fp8Scheme::Row ? 1 : (k + kFp8BlockSize - 1) / kFp8BlockSize;
  const int64_t group = scheme == Fp8Scheme::Row ? k : kFp8BlockSize;
  parallel_for(static_cast<size_t>(t), std::max<size_t>(1, 16384 / std::max<size_t>(k, 1)),
               [&](size_t begin, size_t end) {
                 for (auto r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
                   for (int64_t g = 0; g < groups; ++g) {
                     const float s = xscale[r * groups + g];
                     const int64_t c1 = std::min(k, (g + 1) * group);
                     for (int64_t c = g * group; c < c1; ++c) {
                       out[r * k + c] = values[xq[r * k + c]] * s;
                     }
                   }
                 }
               });
  return out;
}

}  // namespace

void linear_fp8_quantized(Fp8Scheme scheme, const uint8_t* xq, const float* xscale, int64_t t,
                          int64_t k, const uint8_t* wq, const float* wscale, int64_t n,
                          const float* bias, float* y) {
  const std::vector<float> xd = dequantize_activations(scheme, xq, xscale, t, k);
  gemm_xwt(xd.data(), t, k, n, fp8_decoder(scheme, wq, wscale, k), bias, y);
}

void linear_fp8(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, const uint8_t* wq,
                const float* wscale, int64_t n, const float* bias, float* y, Fp8ScaleRule rule) {
  std::vector<uint8_t> xq(static_cast<size_t>(t * k));
  std::vector<float> xscale(
      static_cast<size_t>(num_elements(activation_scale_shape(scheme, t, k))));
  quantize_activations(scheme, x, t, k, xq.data(), xscale.data(), rule);
  linear_fp8_quantized(scheme, xq.data(), xscale.data(), t, k, wq, wscale, n, bias, y);
}

void linear_bf16(const float* x, int64_t t, int64_t k, const uint16_t* w_bf16, int64_t n,
                 const float* bias, float* y) {
  gemm_xwt(x, t, k, n, dense_decoder(w_bf16, k, bf16_to_f32), bias, y);
}

void linear_f16(const float* x, int64_t t, int64_t k, const uint16_t* w_f16, int64_t n,
                const float* bias, float* y) {
  gemm_xwt(x, t, k, n, dense_decoder(w_f16, k, f16_to_f32), bias, y);
}

void linear_f32(const float* x, int64_t t, int64_t k, const float* w, int64_t n, const float* bias,
                float* y) {
  gemm_xwt(x, t, k, n, dense_decoder(w, k, [](float v) { return v; }), bias, y);
}

}  // namespace fp8llm::cpu
