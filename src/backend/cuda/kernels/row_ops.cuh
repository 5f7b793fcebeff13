// Row-wise device pieces shared by the plain kernels (model_kernels.cu) and their fused forms that
// also quantize what they write for the FP8 projection after them (fused_quant.cu): one block per
// row, each thread holding kPer elements i = threadIdx.x + j * kThreads in registers. Keeping one
// definition of each computation is what makes the fused kernels' outputs the plain ones' bits.
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/kernels/block_reduce.cuh"

namespace fp8llm::cuda::detail {

// (gate / (1 + exp(-gate))) * up, rounded as the CPU backend rounds it.
__device__ __forceinline__ float silu_times(float g, float u) {
  return __fmul_rn(__fdiv_rn(g, 1.0f + expf(-g)), u);
}

// RMSNorm of row `row` (model_kernels.h): with `residual` set, x += residual first (written
// back) and the sum is normalized. Writes out's row and leaves its values in y. out may alias x:
// every element is read before the barrier in block_sum_double and written by the same thread
// after it. The squares are summed in double, as the CPU backend sums them.
template <int kThreads, int kPer>
__device__ __forceinline__ void rms_norm_row(float* x, const float* __restrict__ residual,
                                             int64_t row, int64_t dim,
                                             const __nv_bfloat16* __restrict__ w, float eps,
                                             float* out, float (&y)[kPer]) {
  float* xr = x + row * dim;
  float v[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
    v[j] = i < dim ? xr[i] : 0.0f;
  }
  if (residual != nullptr) {
    const float* rr = residual + row * dim;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
      if (i < dim) {
        v[j] = __fadd_rn(v[j], rr[i]);
        xr[i] = v[j];
      }
    }
  }
  double ss = 0.0;
#pragma unroll
  for (int j = 0; j < kPer; ++j) ss += __fmul_rn(v[j], v[j]);
  ss = block_sum_double<kThreads>(ss);
  const float variance = static_cast<float>(ss / static_cast<double>(dim));
  const float inv_rms = static_cast<float>(1.0 / sqrt(static_cast<double>(variance + eps)));
  float* yr = out + row * dim;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
    y[j] = i < dim ? __fmul_rn(__bfloat162float(w[i]), __fmul_rn(v[j], inv_rms)) : 0.0f;
    if (i < dim) yr[i] = y[j];
  }
}

}  // namespace fp8llm::cuda::detail
