// One element of a cached K or V row, widened to fp32 as the CPU's KvRows widens it (fp32 as is,
// bf16 exactly, e4m3 times its row's scale), and written back in the cache's element type; and 16
// bytes of a row widened the same way, for kernels that read rows in vector loads. Shared by the
// attention kernels and the KV append.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "backend/cuda/kernels/fp8_device.cuh"
#include "fp8llm/modes.h"

namespace fp8llm::cuda::detail {

__device__ __forceinline__ float kv_load(const float* p, int64_t i, float) {
  return p[i];
}
__device__ __forceinline__ float kv_load(const __nv_bfloat16* p, int64_t i, float) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ float kv_load(const uint8_t* p, int64_t i, float scale) {
  return __fmul_rn(e4m3_to_float(p[i]), scale);
}

__device__ __forceinline__ void kv_store(float* p, int64_t i, float x, float) {
  p[i] = x;
}
__device__ __forceinline__ void kv_store(__nv_bfloat16* p, int64_t i, float x, float) {
  p[i] = __float2bfloat16_rn(x);
}
__device__ __forceinline__ void kv_store(uint8_t* p, int64_t i, float x, float scale) {
  p[i] = fp8_quantize(x, scale);
}

// 16 bytes of a cached K or V row widened to fp32, element by element as kv_load widens one.
template <typename T>
struct Row16;
template <>
struct Row16<float> {
  static constexpr int kElems = 4;
  __device__ static void widen(const uint4 r, float, float* out) {
    out[0] = __uint_as_float(r.x);
    out[1] = __uint_as_float(r.y);
    out[2] = __uint_as_float(r.z);
    out[3] = __uint_as_float(r.w);
  }
};
template <>
struct Row16<__nv_bfloat16> {
  static constexpr int kElems = 8;
  __device__ static void widen(const uint4 r, float, float* out) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __uint_as_float(w[i] << 16);  // the lower address holds the first element
      out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};
template <>
struct Row16<uint8_t> {
  static constexpr int kElems = 16;
  __device__ static void widen(const uint4 r, float scale, float* out) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int b = 0; b < 4; ++b)
        out[4 * i + b] = __fmul_rn(e4m3_to_float(static_cast<uint8_t>(w[i] >> (8 * b))), scale);
    }
  }
};

// 16 bytes of a cached row at `src` (zeros where src is null: a key past the sequence's last),
// widened as Row16 widens them and rounded to bf16 at dst (4-byte aligned): the tiles the
// tensor-core attention kernel multiplies.
template <typename T>
__device__ __forceinline__ void widen_row16_to_bf16(const T* src, float scale, __nv_bfloat16* dst) {
  constexpr int kE = Row16<T>::kElems;
  float f[kE];
  if (src != nullptr) {
    Row16<T>::widen(*reinterpret_cast<const uint4*>(src), scale, f);
  } else {
#pragma unroll
    for (int e = 0; e < kE; ++e) f[e] = 0.0f;
  }
  auto* pairs = reinterpret_cast<__nv_bfloat162*>(dst);
#pragma unroll
  for (int e = 0; e < kE; e += 2) pairs[e / 2] = __floats2bfloat162_rn(f[e], f[e + 1]);
}

// Calls f.template operator()<T>() with the cache's element type T (float, __nv_bfloat16, or
// uint8_t for e4m3); an unsettled type (Auto) is an std::invalid_argument naming `what`.
template <typename F>
void with_kv_element_type(KvCacheDtype dtype, const char* what, F&& f) {
  switch (dtype) {
    case KvCacheDtype::F32:
      return f.template operator()<float>();
    case KvCacheDtype::BF16:
      return f.template operator()<__nv_bfloat16>();
    case KvCacheDtype::Fp8:
      return f.template operator()<uint8_t>();
    case KvCacheDtype::Auto:
      break;
  }
  throw std::invalid_argument(std::string(what) + ": the KV element type is not settled");
}

}  // namespace fp8llm::cuda::detail
