// One element of a cached K or V row, widened to fp32 as the CPU's KvRows widens it (fp32 as is,
// bf16 exactly, e4m3 times its row's scale), and written back in the cache's element type. Shared
// by the attention kernels and the KV append.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/kernels/fp8_device.cuh"

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

}  // namespace fp8llm::cuda::detail
