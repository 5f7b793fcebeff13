// Element types found in checkpoints, and exact conversions between them.
//
// All conversions to a narrower type round to nearest, ties to even. NaN stays NaN. Overflow:
// bf16/fp16/e5m2 become +-inf; float8_e4m3fn has no infinity, so anything that rounds past 448
// (and +-inf) becomes NaN, as in PyTorch. Saturation to +-448 is the quantizer's job (it clamps
// before encoding), not the encoder's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace fp8llm {

enum class DType : uint8_t { BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2 };

// Size of one element in bytes.
size_t dtype_size(DType t);
// The safetensors spelling ("BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);
bool is_float8(DType t);

float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);
float e4m3_to_f32(uint8_t bits);
uint8_t f32_to_e4m3(float value);
float e5m2_to_f32(uint8_t bits);
uint8_t f32_to_e5m2(float value);

// Largest finite float8_e4m3fn value.
inline constexpr float kE4M3Max = 448.0f;

// Decode `count` elements of a float dtype (BF16, F16, F32, F64, F8_*) at `src` into fp32.
void to_f32(DType src_type, const void* src, float* dst, size_t count);
// Encode `count` fp32 values into `dst_type` (F32, BF16 or F16), rounding as above.
void from_f32(DType dst_type, const float* src, void* dst, size_t count);

}  // namespace fp8llm
