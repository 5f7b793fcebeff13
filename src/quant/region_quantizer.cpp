#include "quant/region_quantizer.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "quant/fp8_encode.h"

namespace fp8llm {
namespace {

using fp8_encode::encode_finite;
using fp8_encode::encode_scaled_any;
using fp8_encode::max_abs_bits;

constexpr int64_t B = kFp8BlockSize;
constexpr int64_t kGrainElements = 1 << 15;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// The first non-finite element of rows [r0, r1) x columns [c0, c1) of w [., k], in row-major
// order, as an Error (called once a scale's amax showed there is one).
template <class Src>
[[noreturn]] void fail_non_finite(const typename Src::Bits* w, int64_t k, int64_t r0, int64_t r1,
                                  int64_t c0, int64_t c1, std::string_view tensor_name) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = c0; c < c1; ++c) {
      const auto a = static_cast<typename Src::Bits>(w[r * k + c] & Src::kAbsMask);
      if (a >= Src::kInfBits) {
        fail("{}: contains {} at [{}, {}]; refusing to quantize", tensor_name,
             a > Src::kInfBits ? "NaN" : "Inf", r, c);
      }
    }
  }
  fail("{}: contains a non-finite value; refusing to quantize", tensor_name);
}

template <class Src>
void quantize_region_rows(const typename Src::Bits* w, int64_t k, const TensorSlice& region,
                          uint8_t* q, float* scales, std::string_view tensor_name,
                          Fp8ScaleRule rule) {
  std::atomic<bool> non_finite = false;
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(k, 1));
  parallel_for(static_cast<size_t>(region.rows()), static_cast<size_t>(grain),
               [&](size_t begin, size_t end) {
                 for (auto i = static_cast<int64_t>(begin); i < static_cast<int64_t>(end); ++i) {
                   const typename Src::Bits* row = w + (region.row_begin + i) * k;
                   const auto amax = max_abs_bits<Src>(row, k);  // the whole row's
                   if (amax >= Src::kInfBits) {
                     non_finite = true;
                     return;
                   }
                   scales[i] = fp8_scale_from_amax(Src::to_f32(amax), rule);
                   encode_finite<Src>(row + region.col_begin, region.cols(), scales[i],
                                      q + i * region.cols());
                 }
               });
  if (non_finite) {
    fail_non_finite<Src>(w, k, region.row_begin, region.row_end, 0, k, tensor_name);
  }
}

template <class Src>
void quantize_region_blocks(const typename Src::Bits* w, int64_t n, int64_t k,
                            const TensorSlice& region, uint8_t* q, float* scales,
                            std::string_view tensor_name, Fp8ScaleRule rule) {
  const int64_t tr0 = region.row_begin / B, tr1 = ceil_div(region.row_end, B);
  const int64_t tc0 = region.col_begin / B, tc1 = ceil_div(region.col_end, B);
  const int64_t tile_cols = tc1 - tc0;
  std::atomic<bool> non_finite = false;
  parallel_for(static_cast<size_t>(tr1 - tr0), 1, [&](size_t begin, size_t end) {
    std::vector<typename Src::Bits> amax(static_cast<size_t>(tile_cols));
    for (auto tr = tr0 + static_cast<int64_t>(begin); tr < tr0 + static_cast<int64_t>(end); ++tr) {
      // The amax of every tile touched, over all of the tile.
      const int64_t r0 = tr * B, r1 = std::min(n, r0 + B);
      std::fill(amax.begin(), amax.end(), 0);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t tc = tc0; tc < tc1; ++tc) {
          const int64_t c0 = tc * B, len = std::min(k, c0 + B) - c0;
          auto& m = amax[static_cast<size_t>(tc - tc0)];
          m = std::max(m, max_abs_bits<Src>(w + r * k + c0, len));
        }
      }
      if (*std::max_element(amax.begin(), amax.end()) >= Src::kInfBits) {
        non_finite = true;
        return;
      }
      float* tile_scales = scales + (tr - tr0) * tile_cols;
      for (int64_t j = 0; j < tile_cols; ++j)
        tile_scales[j] = fp8_scale_from_amax(Src::to_f32(amax[static_cast<size_t>(j)]), rule);
      // The region's elements in this tile row.
      const int64_t e0 = std::max(r0, region.row_begin), e1 = std::min(r1, region.row_end);
      for (int64_t r = e0; r < e1; ++r) {
        for (int64_t tc = tc0; tc < tc1; ++tc) {
          const int64_t c0 = std::max(tc * B, region.col_begin);
          const int64_t c1 = std::min((tc + 1) * B, region.col_end);
          encode_finite<Src>(w + r * k + c0, c1 - c0, tile_scales[tc - tc0],
                             q + (r - region.row_begin) * region.cols() + (c0 - region.col_begin));
        }
      }
    }
  });
  if (non_finite) {
    fail_non_finite<Src>(w, k, tr0 * B, std::min(n, tr1 * B), tc0 * B, std::min(k, tc1 * B),
                         tensor_name);
  }
}

template <class Src>
void quantize_region_typed(Fp8Scheme scheme, const TensorView& w, const TensorSlice& region,
                           uint8_t* q, float* scales, std::string_view tensor_name,
                           Fp8ScaleRule rule) {
  const int64_t n = w.shape[0], k = w.shape[1];
  const auto* bits = w.as<typename Src::Bits>();
  if (scheme == Fp8Scheme::Row) {
    quantize_region_rows<Src>(bits, k, region, q, scales, tensor_name, rule);
  } else {
    quantize_region_blocks<Src>(bits, n, k, region, q, scales, tensor_name, rule);
  }
}

// Calls fn(c, len, group) for the runs of columns [0, k) of a row held from column col0 that
// fall in one scale group of the full row.
template <class Fn>
void for_each_group_run(Fp8Scheme scheme, int64_t k, int64_t col0, Fn&& fn) {
  if (scheme == Fp8Scheme::Row) {
    fn(int64_t{0}, k, int64_t{0});
    return;
  }
  for (int64_t c = 0; c < k;) {
    const int64_t g = (col0 + c) / B;
    const int64_t end = std::min(k, (g + 1) * B - col0);
    fn(c, end - c, g);
    c = end;
  }
}

}  // namespace

TensorSlice region_scale_grid(Fp8Scheme scheme, const TensorSlice& region) {
  if (scheme == Fp8Scheme::Row) return {region.row_begin, region.row_end, 0, 1};
  return {region.row_begin / B, ceil_div(region.row_end, B), region.col_begin / B,
          ceil_div(region.col_end, B)};
}

Shape region_scale_shape(Fp8Scheme scheme, const TensorSlice& region) {
  const TensorSlice grid = region_scale_grid(scheme, region);
  return {grid.rows(), grid.cols()};
}

void quantize_weight_region(Fp8Scheme scheme, const TensorView& w, const TensorSlice& region,
                            uint8_t* q, float* scales, std::string_view tensor_name,
                            Fp8ScaleRule rule) {
  FP8LLM_CHECK(w.shape.size() == 2,
               "{}: cannot quantize a tensor of shape {}; FP8 weights must "
               "be 2-D",
               tensor_name, shape_str(w.shape));
  const int64_t n = w.shape[0], k = w.shape[1];
  FP8LLM_CHECK(
      region.row_begin >= 0 && region.row_begin < region.row_end && region.row_end <= n &&
          region.col_begin >= 0 && region.col_begin < region.col_end && region.col_end <= k,
      "{}: region rows [{}, {}) columns [{}, {}) is not inside {}", tensor_name, region.row_begin,
      region.row_end, region.col_begin, region.col_end, shape_str(w.shape));
  FP8LLM_CHECK(w.nbytes == static_cast<size_t>(w.numel()) * dtype_size(w.dtype),
               "{}: {} bytes for a {} tensor of shape {}", tensor_name, w.nbytes,
               dtype_name(w.dtype), shape_str(w.shape));
  switch (w.dtype) {
    case DType::BF16:
      return quantize_region_typed<fp8_encode::Bf16>(scheme, w, region, q, scales, tensor_name,
                                                     rule);
    case DType::F16:
      return quantize_region_typed<fp8_encode::F16>(scheme, w, region, q, scales, tensor_name,
                                                    rule);
    case DType::F32:
      return quantize_region_typed<fp8_encode::F32>(scheme, w, region, q, scales, tensor_name,
                                                    rule);
    default:
      fail("{}: cannot quantize {} weights; expected BF16, F16 or F32", tensor_name,
           dtype_name(w.dtype));
  }
}

void activation_amax_bits(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, int64_t col0,
                          int64_t full_k, uint32_t* amax) {
  using fp8_encode::F32;
  const int64_t groups = num_elements(activation_scale_shape(scheme, 1, full_k));
  const auto* bits = reinterpret_cast<const uint32_t*>(x);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(k, 1));
  parallel_for(static_cast<size_t>(t), static_cast<size_t>(grain), [&](size_t begin, size_t end) {
    for (auto r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
      uint32_t* row = amax + r * groups;
      std::fill(row, row + groups, 0u);
      for_each_group_run(scheme, k, col0, [&](int64_t c, int64_t len, int64_t g) {
        row[g] = max_abs_bits<F32>(bits + r * k + c, len);
      });
    }
  });
}

void quantize_activation_columns(Fp8Scheme scheme, const float* x, int64_t t, int64_t k,
                                 int64_t col0, int64_t full_k, const uint32_t* amax, uint8_t* q,
                                 float* scales, Fp8ScaleRule rule) {
  using fp8_encode::F32;
  const int64_t groups = num_elements(activation_scale_shape(scheme, 1, full_k));
  const auto* bits = reinterpret_cast<const uint32_t*>(x);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(k, 1));
  parallel_for(static_cast<size_t>(t), static_cast<size_t>(grain), [&](size_t begin, size_t end) {
    for (auto r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
      const uint32_t* row_amax = amax + r * groups;
      float* row_scales = scales + r * groups;
      for (int64_t g = 0; g < groups; ++g)
        row_scales[g] = fp8_scale_from_amax(F32::to_f32(row_amax[g]), rule);
      for_each_group_run(scheme, k, col0, [&](int64_t c, int64_t len, int64_t g) {
        // As the whole row's quantizer: a non-finite amax (NaN or infinity in the group, on any
        // rank) or a zero scale takes the general path.
        if (row_amax[g] < F32::kInfBits) {
          encode_finite<F32>(bits + r * k + c, len, row_scales[g], q + r * k + c);
        } else {
          encode_scaled_any<F32>(bits + r * k + c, len, row_scales[g], q + r * k + c);
        }
      });
    }
  });
}

}  // namespace fp8llm
