#include "loader/value_checks.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

namespace fp8llm {
namespace {

// Elements per parallel chunk: scanning is memory-bound, so chunks stay large.
constexpr size_t kGrain = size_t{1} << 20;

// The index of the first element of p[0, n) whose bits under `mask` equal `mask` (an all-ones
// exponent: infinity or NaN; for e4m3fn the NaN code), or -1. The scan runs over chunks in
// parallel; the smallest hit wins, so the error names the same element whatever the thread count.
template <typename Bits>
int64_t first_all_ones(const Bits* p, size_t n, Bits mask) {
  std::atomic<int64_t> first{-1};
  parallel_for(n, kGrain, [&](size_t begin, size_t end) {
    Bits any = 0;
    for (size_t i = begin; i < end; ++i) any |= static_cast<Bits>((p[i] & mask) == mask);
    if (!any) return;
    for (size_t i = begin; i < end; ++i) {
      if ((p[i] & mask) != mask) continue;
      int64_t seen = first.load();
      const auto at = static_cast<int64_t>(i);
      while ((seen < 0 || at < seen) && !first.compare_exchange_weak(seen, at)) {
      }
      return;
    }
  });
  return first.load();
}

// "[r, c]" for element `index` of `shape` (row-major).
std::string position(const Shape& shape, int64_t index) {
  std::vector<int64_t> at(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    const int64_t extent = std::max<int64_t>(shape[d], 1);
    at[d] = index % extent;
    index /= extent;
  }
  std::string out = "[";
  for (size_t d = 0; d < at.size(); ++d) out += (d ? ", " : "") + std::to_string(at[d]);
  return shape.empty() ? "[0]" : out + "]";
}

}  // namespace

void check_finite(const TensorView& values, std::string_view tensor_name) {
  const auto n = static_cast<size_t>(values.numel());
  int64_t bad = -1;
  float value = 0;
  switch (values.dtype) {
    case DType::BF16:
      bad = first_all_ones<uint16_t>(values.as<uint16_t>(), n, 0x7F80);
      if (bad >= 0) value = bf16_to_f32(values.as<uint16_t>()[bad]);
      break;
    case DType::F16:
      bad = first_all_ones<uint16_t>(values.as<uint16_t>(), n, 0x7C00);
      if (bad >= 0) value = f16_to_f32(values.as<uint16_t>()[bad]);
      break;
    case DType::F32:
      bad = first_all_ones<uint32_t>(values.as<uint32_t>(), n, 0x7F800000);
      if (bad >= 0) value = values.as<float>()[bad];
      break;
    case DType::F8_E4M3:
      bad = first_all_ones<uint8_t>(values.as<uint8_t>(), n, 0x7F);
      if (bad >= 0) {
        fail("{}: contains the F8_E4M3 NaN code 0x{:02x} at {}", tensor_name,
             values.as<uint8_t>()[bad], position(values.shape, bad));
      }
      return;
    default:
      return;
  }
  if (bad >= 0) {
    fail("{}: contains {} at {}", tensor_name, std::isnan(value) ? "NaN" : "Inf",
         position(values.shape, bad));
  }
}

void check_scales(const TensorView& scales, std::string_view tensor_name) {
  const auto n = static_cast<size_t>(scales.numel());
  std::vector<float> f32(n);
  to_f32(scales.dtype, scales.data, f32.data(), n);
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(f32[i]) && f32[i] > 0) continue;
    fail("{}: scale {} at {} is not a finite positive number", tensor_name, f32[i],
         position(scales.shape, static_cast<int64_t>(i)));
  }
}

void check_planned_tensor(const PlannedTensor& tensor, const TensorView& source) {
  if (tensor.is_weight_scale) {
    check_scales(source, tensor.spec.name);
  } else if (!tensor.quantize) {
    check_finite(source, tensor.spec.name);
  }
}

}  // namespace fp8llm
