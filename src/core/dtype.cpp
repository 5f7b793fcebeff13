#include "core/dtype.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace fp8llm {
namespace {

struct DTypeInfo {
  DType type;
  std::string_view name;
  size_t size;
};

constexpr std::array<DTypeInfo, 12> kDTypes = {{
    {DType::BOOL, "BOOL", 1},
    {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},
    {DType::I32, "I32", 4},
    {DType::I64, "I64", 8},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
}};

const DTypeInfo& info(DType t) { return kDTypes[static_cast<size_t>(t)]; }

// Round a finite, non-negative float to a small float format with `mant_bits` explicit mantissa
// bits and exponent bias `bias` (normals start at exponent 1). Returns the unsigned bit pattern
// (exponent << mant_bits | mantissa), which may overflow into the all-ones exponent; the caller
// decides what overflow means for its format.
uint32_t round_small_float(float a, int mant_bits, int bias) {
  const uint32_t bits = std::bit_cast<uint32_t>(a);
  const int exp32 = static_cast<int>(bits >> 23);  // biased fp32 exponent (a >= 0)
  const int min_normal_exp32 = 127 - bias + 1;     // fp32 exponent of the target's 2^(1-bias)
  if (exp32 < min_normal_exp32) {
    // Subnormal in the target: value = m * 2^(1-bias-mant_bits). Scale exactly (power of two) and
    // round with the FPU's default round-to-nearest-even.
    const float scaled = std::ldexp(a, bias - 1 + mant_bits);
    return static_cast<uint32_t>(std::nearbyint(scaled));
  }
  // Normal: drop (23 - mant_bits) mantissa bits with round-to-nearest-even; a carry out of the
  // mantissa correctly bumps the exponent.
  const int shift = 23 - mant_bits;
  const uint32_t rebased = bits - (static_cast<uint32_t>(127 - bias) << 23);
  const uint32_t lsb = (rebased >> shift) & 1u;
  const uint32_t rounding = (1u << (shift - 1)) - 1u + lsb;
  return (rebased + rounding) >> shift;
}

}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
std::string_view dtype_name(DType t) { return info(t).name; }
bool is_float8(DType t) { return t == DType::F8_E4M3 || t == DType::F8_E5M2; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (d.name == name) return d.type;
  }
  return std::nullopt;
}

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if (std::isnan(value)) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // keep it quiet NaN
  const uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7FFFu + lsb) >> 16);
}

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = (bits & 0x8000u) << 16;
  const uint32_t exp = (bits >> 10) & 0x1Fu;
  const uint32_t mant = bits & 0x3FFu;
  float magnitude;
  if (exp == 0) {
    magnitude = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 0x1F) {
    magnitude = mant ? std::numeric_limits<float>::quiet_NaN() : INFINITY;
  } else {
    magnitude = std::bit_cast<float>(((exp + 112u) << 23) | (mant << 13));
  }
  return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
}

uint16_t f32_to_f16(float value) {
  const uint16_t sign = static_cast<uint16_t>((std::bit_cast<uint32_t>(value) >> 16) & 0x8000u);
  const float a = std::fabs(value);
  if (std::isnan(value)) return sign | 0x7E00u;
  if (a >= 65520.0f) return sign | 0x7C00u;  // rounds to infinity (65520 is the halfway point)
  return sign | static_cast<uint16_t>(round_small_float(a, 10, 15));
}

float e4m3_to_f32(uint8_t bits) {
  const float sign = (bits & 0x80u) ? -1.0f : 1.0f;
  const int exp = (bits >> 3) & 0xF;
  const int mant = bits & 0x7;
  if (exp == 0xF && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
}

uint8_t f32_to_e4m3(float value) {
  const uint8_t sign = (std::bit_cast<uint32_t>(value) >> 24) & 0x80u;
  const float a = std::fabs(value);
  if (!(a < 480.0f)) return sign | 0x7Fu;  // NaN, inf, or beyond the format: NaN (no infinity)
  const uint32_t code = round_small_float(a, 3, 7);
  if (code > 0x7Eu) return sign | 0x7Fu;  // rounded past 448
  return sign | static_cast<uint8_t>(code);
}

float e5m2_to_f32(uint8_t bits) { return f16_to_f32(static_cast<uint16_t>(bits) << 8); }

uint8_t f32_to_e5m2(float value) {
  const uint8_t sign = (std::bit_cast<uint32_t>(value) >> 24) & 0x80u;
  const float a = std::fabs(value);
  if (std::isnan(value)) return sign | 0x7Fu;
  if (a >= 61440.0f) return sign | 0x7Cu;  // halfway between 57344 and 65536 rounds to even: inf
  return sign | static_cast<uint8_t>(round_small_float(a, 2, 15));
}

void to_f32(DType src_type, const void* src, float* dst, size_t count) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (src_type) {
    case DType::F32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case DType::F64:
      for (size_t i = 0; i < count; ++i) {
        double d;
        std::memcpy(&d, bytes + i * 8, 8);
        dst[i] = static_cast<float>(d);
      }
      return;
    case DType::BF16:
    case DType::F16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + i * 2, 2);
        dst[i] = src_type == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
      return;
    case DType::F8_E4M3:
      for (size_t i = 0; i < count; ++i) dst[i] = e4m3_to_f32(bytes[i]);
      return;
    case DType::F8_E5M2:
      for (size_t i = 0; i < count; ++i) dst[i] = e5m2_to_f32(bytes[i]);
      return;
    default:
      fail("cannot convert {} to F32", dtype_name(src_type));
  }
}

void from_f32(DType dst_type, const float* src, void* dst, size_t count) {
  auto* bytes = static_cast<uint8_t*>(dst);
  switch (dst_type) {
    case DType::F32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case DType::BF16:
    case DType::F16:
      for (size_t i = 0; i < count; ++i) {
        const uint16_t h = dst_type == DType::BF16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
        std::memcpy(bytes + i * 2, &h, 2);
      }
      return;
    default:
      fail("cannot convert F32 to {}", dtype_name(dst_type));
  }
}

}  // namespace fp8llm
