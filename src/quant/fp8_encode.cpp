#include "quant/fp8_encode.h"

#include "quant/simd_clones.h"

namespace fp8llm::fp8_encode {

FP8LLM_SIMD_CLONES uint16_t max_abs_bits_u16(const uint16_t* p, int64_t n) {
  return max_abs_bits_loop<Bf16>(p, n);
}

FP8LLM_SIMD_CLONES uint32_t max_abs_bits_u32(const uint32_t* p, int64_t n) {
  return max_abs_bits_loop<F32>(p, n);
}

FP8LLM_SIMD_CLONES void encode_scaled_bf16(const uint16_t* x, int64_t n, float scale, uint8_t* q) {
  encode_scaled_loop<Bf16>(x, n, scale, q);
}

FP8LLM_SIMD_CLONES void encode_scaled_f16(const uint16_t* x, int64_t n, float scale, uint8_t* q) {
  encode_scaled_loop<F16>(x, n, scale, q);
}

FP8LLM_SIMD_CLONES void encode_scaled_f32(const uint32_t* x, int64_t n, float scale, uint8_t* q) {
  encode_scaled_loop<F32>(x, n, scale, q);
}

}  // namespace fp8llm::fp8_encode
