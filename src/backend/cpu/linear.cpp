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

constexpr int64_t B = kFp8BlockSize;

// deq(W) = float32(q) * s with the scale of the element's row (row) or 128x128 tile (block). A
// shard's tiles are those of the full weight: its element (r, c) is in tile ((shard.row + r) /
// 128, (shard.col + c) / 128), counted from the first tile it touches.
PanelDecoder fp8_decoder(Fp8Scheme scheme, const uint8_t* wq, const float* wscale, int64_t k,
                         const WeightShard& shard) {
  const int64_t first_tile_row = shard.row / B, first_tile_col = shard.col / B;
  const int64_t tile_cols = (shard.col + k + B - 1) / B - first_tile_col;
  return [=](int64_t n0, int64_t rows, int64_t k0, int64_t depth, float* panel) {
    const float* values = e4m3_values().data();
    for (int64_t j = 0; j < rows; ++j) {
      const int64_t r = n0 + j;
      const uint8_t* src = wq + r * k + k0;
      const float* tile_row = wscale + ((shard.row + r) / B - first_tile_row) * tile_cols;
      // Runs of columns under one scale: the whole panel (row), or up to the next tile edge of
      // the full weight (block; every 128 columns when the shard starts on a tile edge).
      for (int64_t c0 = 0; c0 < depth;) {
        const int64_t tile = (shard.col + k0 + c0) / B;
        const int64_t c1 = std::min(depth, (tile + 1) * B - shard.col - k0);
        const float s = scheme == Fp8Scheme::Row ? wscale[r] : tile_row[tile - first_tile_col];
        for (int64_t kk = c0; kk < c1; ++kk) panel[kk * W + j] = values[src[kk]] * s;
        c0 = c1;
      }
    }
  };
}

// deq(x) for quantized activations, as float32 [t, k]: columns [col, col + k) of rows of full_k
// columns, whose scales are [t, groups of full_k] (the whole input: col 0, full_k == k).
std::vector<float> dequantize_activations(Fp8Scheme scheme, const uint8_t* xq, const float* xscale,
                                          int64_t t, int64_t k, int64_t col, int64_t full_k) {
  std::vector<float> out(static_cast<size_t>(t * k));
  const float* values = e4m3_values().data();
  const int64_t groups = scheme == Fp8Scheme::Row ? 1 : (full_k + B - 1) / B;
  parallel_for(static_cast<size_t>(t), std::max<size_t>(1, 16384 / std::max<size_t>(k, 1)),
               [&](size_t begin, size_t end) {
                 for (auto r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
                   for (int64_t c0 = 0; c0 < k;) {
                     const int64_t g = scheme == Fp8Scheme::Row ? 0 : (col + c0) / B;
                     const int64_t c1 =
                         scheme == Fp8Scheme::Row ? k : std::min(k, (g + 1) * B - col);
                     const float s = xscale[r * groups + g];
                     for (int64_t c = c0; c < c1; ++c) out[r * k + c] = values[xq[r * k + c]] * s;
                     c0 = c1;
                   }
                 }
               });
  return out;
}

}  // namespace

void linear_fp8_quantized_shard(Fp8Scheme scheme, const uint8_t* xq, const float* xscale, int64_t t,
                                int64_t k, const uint8_t* wq, const float* wscale, int64_t n,
                                const WeightShard& shard, const float* bias, float* y) {
  const std::vector<float> xd =
      dequantize_activations(scheme, xq, xscale, t, k, shard.col, shard.full_k);
  gemm_xwt(xd.data(), t, k, n, fp8_decoder(scheme, wq, wscale, k, shard), bias, y);
}

void linear_fp8_quantized(Fp8Scheme scheme, const uint8_t* xq, const float* xscale, int64_t t,
                          int64_t k, const uint8_t* wq, const float* wscale, int64_t n,
                          const float* bias, float* y) {
  linear_fp8_quantized_shard(scheme, xq, xscale, t, k, wq, wscale, n, {.full_k = k}, bias, y);
}

void linear_fp8_shard(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, const uint8_t* wq,
                      const float* wscale, int64_t n, const WeightShard& shard, const float* bias,
                      float* y) {
  std::vector<uint8_t> xq(static_cast<size_t>(t * k));
  std::vector<float> xscale(
      static_cast<size_t>(num_elements(activation_scale_shape(scheme, t, k))));
  quantize_activations(scheme, x, t, k, xq.data(), xscale.data());
  linear_fp8_quantized_shard(scheme, xq.data(), xscale.data(), t, k, wq, wscale, n, shard, bias, y);
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
