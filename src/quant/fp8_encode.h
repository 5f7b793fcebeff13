// Element kernels of the FP8 definition (fp8_scheme.h), private to the quantizer. They are written
// as branch-free loops that the compiler vectorizes, yet they stay bit-exact with the scalar
// definition: true division by the scale, clamping, then round-to-nearest-even into e4m3.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"

namespace fp8llm::fp8_encode {

// How to read one source element type: its raw bits, the mask that drops the sign, the bit
// pattern of +infinity (any larger absolute pattern is a NaN), and the exact float32 value.
struct Bf16 {
  using Bits = uint16_t;
  using SignedBits = int16_t;
  static constexpr Bits kAbsMask = 0x7FFF;
  static constexpr Bits kInfBits = 0x7F80;
  static float to_f32(Bits b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }
};

struct F16 {
  using Bits = uint16_t;
  using SignedBits = int16_t;
  static constexpr Bits kAbsMask = 0x7FFF;
  static constexpr Bits kInfBits = 0x7C00;
  // Branch-free and exact for every pattern (normals by exponent rebasing and a power-of-two
  // multiply, subnormals by a magic-number subtraction, inf/NaN by the multiply's overflow).
  static float to_f32(Bits h) {
    const uint32_t w = static_cast<uint32_t>(h) << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const float normalized = std::bit_cast<float>((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f;
    // Mask select (see encode_saturated for why not `?:`).
    const uint32_t denormal_mask = 0u - static_cast<uint32_t>(two_w < (1u << 27));
    const uint32_t magnitude = (std::bit_cast<uint32_t>(denormalized) & denormal_mask) |
                               (std::bit_cast<uint32_t>(normalized) & ~denormal_mask);
    return std::bit_cast<float>(sign | magnitude);
  }
};

struct F32 {
  using Bits = uint32_t;
  using SignedBits = int32_t;
  static constexpr Bits kAbsMask = 0x7FFFFFFF;
  static constexpr Bits kInfBits = 0x7F800000;
  static float to_f32(Bits b) { return std::bit_cast<float>(b); }
};

// The largest absolute bit pattern in p[0, n). For IEEE formats the order of absolute bit patterns
// is the order of magnitudes, with infinity next and NaNs above it, so one integer max gives both
// amax and whether a non-finite value is present. (Signed compare: the patterns have no sign bit,
// and signed integer max vectorizes on every x86-64.)
template <class Src>
typename Src::Bits max_abs_bits_loop(const typename Src::Bits* p, int64_t n) {
  using S = typename Src::SignedBits;
  S m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const S a = static_cast<S>(p[i] & Src::kAbsMask);
    m = a > m ? a : m;
  }
  return static_cast<typename Src::Bits>(m);
}

// e4m3 code of clamp(v, -448, 448) for finite v, rounded to nearest even, without branches.
// The clamp works on the absolute bit pattern (integer order is magnitude order), which the
// compiler vectorizes where a float compare-and-select would not be.
inline uint8_t encode_saturated(float v) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  const uint32_t sign = (bits >> 24) & 0x80u;
  const int32_t unclamped = static_cast<int32_t>(bits & 0x7FFFFFFFu);
  const int32_t max_bits = 0x43E00000;  // 448.0f
  const auto abs_bits = static_cast<uint32_t>(unclamped < max_bits ? unclamped : max_bits);
  // Normal results (|v| >= 2^-6): rebase the exponent from bias 127 to bias 7 and drop 20
  // mantissa bits with round-to-nearest-even; a carry correctly bumps the exponent.
  const uint32_t normal = (abs_bits - (120u << 23) + 0x7FFFFu + ((abs_bits >> 20) & 1u)) >> 20;
  // Subnormal results (|v| < 2^-6, steps of 2^-9): adding 2^14, whose float32 ulp is 2^-9, makes
  // the FPU round to the subnormal grid (nearest even); the low bits are then the code. 2^-6
  // itself comes out as code 8, which is the smallest normal: also right.
  const float shifted = std::bit_cast<float>(abs_bits) + 16384.0f;
  const uint32_t subnormal = std::bit_cast<uint32_t>(shifted) - std::bit_cast<uint32_t>(16384.0f);
  // Select with a mask, not `?:`: a conditional would let the compiler sink the float add into a
  // branch, which it then cannot vectorize (the add might trap).
  const uint32_t subnormal_mask =
      0u - static_cast<uint32_t>(static_cast<int32_t>(abs_bits) < 0x3C800000);  // |v| < 2^-6
  const uint32_t code = (subnormal & subnormal_mask) | (normal & ~subnormal_mask);
  return static_cast<uint8_t>(code | sign);
}

// q[i] = e4m3_rne(clamp(float32(x[i]) / scale, -448, 448)) for finite x and 0 < scale < inf
// (so that every quotient is finite).
template <class Src>
void encode_scaled_loop(const typename Src::Bits* x, int64_t n, float scale, uint8_t* q) {
  for (int64_t i = 0; i < n; ++i) q[i] = encode_saturated(Src::to_f32(x[i]) / scale);
}

// The same definition for any input (NaN, infinities, a zero scale), one element at a time: a NaN
// quotient stays NaN through the clamp and encodes as NaN.
template <class Src>
void encode_scaled_any(const typename Src::Bits* x, int64_t n, float scale, uint8_t* q) {
  for (int64_t i = 0; i < n; ++i) {
    float v = Src::to_f32(x[i]) / scale;
    if (v == v) v = v < -kE4M3Max ? -kE4M3Max : (v > kE4M3Max ? kE4M3Max : v);
    q[i] = f32_to_e4m3(v);
  }
}

// The two loops above compiled for AVX2 and for the baseline instruction set, one picked at run
// time (fp8_encode.cpp). Integer operations and IEEE division give the same bits either way.
uint16_t max_abs_bits_u16(const uint16_t* p, int64_t n);
uint32_t max_abs_bits_u32(const uint32_t* p, int64_t n);
void encode_scaled_bf16(const uint16_t* x, int64_t n, float scale, uint8_t* q);
void encode_scaled_f16(const uint16_t* x, int64_t n, float scale, uint8_t* q);
void encode_scaled_f32(const uint32_t* x, int64_t n, float scale, uint8_t* q);

template <class Src>
typename Src::Bits max_abs_bits(const typename Src::Bits* p, int64_t n) {
  if constexpr (sizeof(typename Src::Bits) == 2) {
    static_assert(Src::kAbsMask == 0x7FFF);
    return max_abs_bits_u16(p, n);
  } else {
    return max_abs_bits_u32(p, n);
  }
}

template <class Src>
void encode_scaled(const typename Src::Bits* x, int64_t n, float scale, uint8_t* q) {
  if constexpr (std::is_same_v<Src, Bf16>) {
    encode_scaled_bf16(x, n, scale, q);
  } else if constexpr (std::is_same_v<Src, F16>) {
    encode_scaled_f16(x, n, scale, q);
  } else {
    encode_scaled_f32(x, n, scale, q);
  }
}

// Encodes finite x[0, n) with `scale`; a scale that underflowed to zero (amax below 448 times the
// smallest float) takes the general path, where the definition divides by zero.
template <class Src>
void encode_finite(const typename Src::Bits* x, int64_t n, float scale, uint8_t* q) {
  if (scale > 0.0f) {
    encode_scaled<Src>(x, n, scale, q);
  } else {
    encode_scaled_any<Src>(x, n, scale, q);
  }
}

}  // namespace fp8llm::fp8_encode
