#include "backend/cpu/kv_rows.h"

#include <cstring>

#include "core/dtype.h"
#include "quant/e4m3_table.h"
#include "quant/quantizer.h"

namespace fp8llm::cpu {

void KvRows::store(int64_t slot, const float* x) const {
  const int64_t row = spec_.row_elements(), d = spec_.head_dim;
  switch (spec_.dtype) {
    case KvCacheDtype::F32:
      std::memcpy(static_cast<float*>(data_) + slot * row, x,
                  sizeof(float) * static_cast<size_t>(row));
      return;
    case KvCacheDtype::BF16: {
      uint16_t* out = static_cast<uint16_t*>(data_) + slot * row;
      for (int64_t i = 0; i < row; ++i) out[i] = f32_to_bf16(x[i]);
      return;
    }
    case KvCacheDtype::Fp8:
      // One scale per KV head: the activation quantizer's per-row scheme over head_dim values.
      for (int64_t g = 0; g < spec_.kv_heads; ++g) {
        quantize_activations(Fp8Scheme::Row, x + g * d, 1, d,
                             static_cast<uint8_t*>(data_) + slot * row + g * d,
                             scales_ + slot * spec_.kv_heads + g);
      }
      return;
    case KvCacheDtype::Auto:
      break;
  }
}

const float* KvRows::head(int64_t slot, int64_t g, float* buf) const {
  const int64_t row = spec_.row_elements(), d = spec_.head_dim;
  const int64_t at = slot * row + g * d;
  switch (spec_.dtype) {
    case KvCacheDtype::F32:
      return static_cast<const float*>(data_) + at;
    case KvCacheDtype::BF16: {
      const uint16_t* in = static_cast<const uint16_t*>(data_) + at;
      for (int64_t i = 0; i < d; ++i) buf[i] = bf16_to_f32(in[i]);
      return buf;
    }
    case KvCacheDtype::Fp8: {
      const uint8_t* in = static_cast<const uint8_t*>(data_) + at;
      const float s = scales_[slot * spec_.kv_heads + g];
      const float* values = e4m3_values().data();
      for (int64_t i = 0; i < d; ++i) buf[i] = values[in[i]] * s;
      return buf;
    }
    case KvCacheDtype::Auto:
      break;
  }
  return buf;
}

}  // namespace fp8llm::cpu
