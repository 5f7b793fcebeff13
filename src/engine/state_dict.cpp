#include "engine/state_dict.h"

#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"

namespace fp8llm {
namespace {

StateDictEntry entry(std::string name, DType dtype, const Shape& shape) {
  const auto bytes = static_cast<uint64_t>(num_elements(shape)) * dtype_size(dtype);
  return {std::move(name), std::string(dtype_name(dtype)), shape, bytes};
}

}  // namespace

std::vector<StateDictItem> state_dict_items(const ModelConfig& config, const WeightStore& weights,
                                            StateDictForm form) {
  std::vector<StateDictItem> items;
  for (const WeightSpec& spec : expected_weights(config)) {
    const HeldWeight held = weights.held_weight(spec);
    if (!held.scheme) {
      items.push_back({entry(spec.name, held.dtype, spec.shape), spec, held, false});
      continue;
    }
    FP8LLM_CHECK(spec.shape.size() == 2, "{}: an FP8 tensor of shape {} (expected 2-D)", spec.name,
                 shape_str(spec.shape));
    if (form == StateDictForm::Dequantized) {
      items.push_back({entry(spec.name, DType::BF16, spec.shape), spec, held, false});
      continue;
    }
    items.push_back({entry(spec.name, DType::F8_E4M3, spec.shape), spec, held, false});
    const Shape scale_shape = weight_scale_shape(*held.scheme, spec.shape[0], spec.shape[1]);
    items.push_back({entry(weight_scale_name(*held.scheme, spec.name), DType::F32, scale_shape),
                     spec, held, true});
  }
  return items;
}

void dequantize_to_bf16(Fp8Scheme scheme, const uint8_t* codes, const float* scales, int64_t n,
                        int64_t k, std::span<std::byte> out) {
  FP8LLM_CHECK(out.size() == static_cast<size_t>(n * k) * 2,
               "dequantize: {} bytes for a [{}, {}] BF16 tensor", out.size(), n, k);
  const int64_t scale_cols = weight_scale_shape(scheme, n, k)[1];
  parallel_for(static_cast<size_t>(n), 16, [&](size_t begin, size_t end) {
    for (auto r = static_cast<int64_t>(begin); r < static_cast<int64_t>(end); ++r) {
      const float* row_scales =
          scheme == Fp8Scheme::Row ? scales + r : scales + (r / kFp8BlockSize) * scale_cols;
      std::byte* dst = out.data() + r * k * 2;
      for (int64_t c = 0; c < k; ++c) {
        const float s = scheme == Fp8Scheme::Row ? row_scales[0] : row_scales[c / kFp8BlockSize];
        const uint16_t bits = f32_to_bf16(e4m3_to_f32(codes[r * k + c]) * s);
        std::memcpy(dst + c * 2, &bits, 2);
      }
    }
  });
}

void read_state_dict_item(const WeightStore& weights, const StateDictItem& item, StateDictForm form,
                          std::span<std::byte> out) {
  FP8LLM_CHECK(out.size() == item.entry.nbytes, "{}: a buffer of {} bytes for a tensor of {}",
               item.entry.name, out.size(), item.entry.nbytes);
  const bool fp8 = item.held.scheme.has_value();
  if (!fp8 || form == StateDictForm::Stored) {
    if (item.is_scale) {
      const size_t count = out.size() / sizeof(float);
      if (reinterpret_cast<uintptr_t>(out.data()) % alignof(float) == 0) {
        weights.read_weight(item.spec, {}, {reinterpret_cast<float*>(out.data()), count});
      } else {  // a caller's buffer that floats cannot be written to directly
        std::vector<float> scales(count);
        weights.read_weight(item.spec, {}, scales);
        std::memcpy(out.data(), scales.data(), out.size());
      }
    } else {
      weights.read_weight(item.spec, out, {});
    }
    return;
  }
  const int64_t n = item.spec.shape[0], k = item.spec.shape[1];
  std::vector<std::byte> codes(static_cast<size_t>(n * k));
  std::vector<float> scales(
      static_cast<size_t>(num_elements(weight_scale_shape(*item.held.scheme, n, k))));
  weights.read_weight(item.spec, codes, scales);
  dequantize_to_bf16(*item.held.scheme, reinterpret_cast<const uint8_t*>(codes.data()),
                     scales.data(), n, k, out);
}

}  // namespace fp8llm
