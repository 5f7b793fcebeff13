// Device-side pieces of the FP8 (float8_e4m3fn) definition shared by the kernels:
//
//   scale(amax) = amax * float32(1/448)   (1.0 where amax == 0; Fp8ScaleRule::MultiplyByReciprocal)
//             or amax / 448                (Fp8ScaleRule::Divide, activations only, on request)
//   q(x, s)     = e4m3_rne(clamp(float32(x) / s, -448, 448))   (true division, not x * (1/s))
//
// The default is the product because the reference checkpoints and logits were made by PyTorch on
// CUDA, which evaluates `amax / 448` as amax * float32(1/448) (see quant/fp8_scheme.h); it differs
// from the true quotient in the last bit for about half of all amax values. Divisions use
// __fdiv_rn so that the result is the correctly rounded quotient whatever flags the file is built
// with; the e4m3 conversion is the hardware round-to-nearest-even one.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/kernels/block_reduce.cuh"

namespace fp8llm::cuda::detail {

inline constexpr float kE4M3MaxF = 448.0f;
inline constexpr int kQuantBlock = 128;

// Scales by the default rule: amax * float32(1/448), as in the reference checkpoints and logits.
__device__ __forceinline__ float fp8_weight_scale_from_amax(float amax) {
  constexpr float kInverseMax = 1.0f / kE4M3MaxF;  // rounded once to float32: 0x1.24924Ap-9
  return amax == 0.0f ? 1.0f : __fmul_rn(amax, kInverseMax);
}

// Activation scales: the default rule, or the true quotient when kDivide (Fp8ScaleRule::Divide).
template <bool kDivide>
__device__ __forceinline__ float fp8_scale_from_amax(float amax) {
  if constexpr (kDivide) {
    return amax == 0.0f ? 1.0f : __fdiv_rn(amax, kE4M3MaxF);
  } else {
    return fp8_weight_scale_from_amax(amax);
  }
}

// NaN passes through the clamp (both comparisons are false) and becomes the e4m3 NaN.
__device__ __forceinline__ uint8_t fp8_quantize(float x, float scale) {
  float v = __fdiv_rn(x, scale);
  v = v > kE4M3MaxF ? kE4M3MaxF : (v < -kE4M3MaxF ? -kE4M3MaxF : v);
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

// Exact e4m3 -> float (NaN stays NaN).
__device__ __forceinline__ float e4m3_to_float(uint8_t q) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(q), __NV_E4M3);
  return __half2float(__half(h));
}

// Four e4m3 values packed in a word -> floats equal to value * 2^-120, with integer operations
// only: the e4m3 exponent and mantissa bits land in the low bits of the float's exponent and the
// top of its mantissa, which scales every value (subnormals included) by exactly 2^(7-127).
// The NaN code is not special-cased (weights never hold it).
__device__ __forceinline__ void e4m3x4_to_float_scaled(uint32_t u, float f[4]) {
  f[0] = __uint_as_float(((u & 0x80u) << 24) | ((u & 0x7Fu) << 20));
  f[1] = __uint_as_float(((u & 0x8000u) << 16) | ((u & 0x7F00u) << 12));
  f[2] = __uint_as_float(((u & 0x800000u) << 8) | ((u & 0x7F0000u) << 4));
  f[3] = __uint_as_float((u & 0x80000000u) | ((u & 0x7F000000u) >> 4));
}
__device__ __forceinline__ float e4m3_to_float_scaled(uint8_t b) {
  const uint32_t u = b;
  return __uint_as_float(((u & 0x80u) << 24) | ((u & 0x7Fu) << 20));
}
inline constexpr float kTwoPow120 = 0x1p120f;

__device__ __forceinline__ float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ float to_float(float v) {
  return v;
}

// max that keeps NaN (activations: a NaN must propagate into the scale, as in the reference).
__device__ __forceinline__ float nan_max(float a, float b) {
  return (a > b || a != a) ? a : b;
}

// The max of a value as the activation (kKeepNaN) or the weight quantizer takes it.
template <bool kKeepNaN>
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const {
    return kKeepNaN ? nan_max(a, b) : fmaxf(a, b);
  }
};

// Max over the warp (all lanes get it). A max does not depend on the order it is taken in.
template <bool kKeepNaN>
__device__ __forceinline__ float warp_max(float v) {
  return warp_reduce(v, MaxOp<kKeepNaN>());
}

// Max over the block (all threads get the result). kThreads is a multiple of 32, at most 1024.
template <int kThreads, bool kKeepNaN>
__device__ __forceinline__ float block_max(float v) {
  return block_reduce<kThreads>(v, MaxOp<kKeepNaN>());
}

}  // namespace fp8llm::cuda::detail
