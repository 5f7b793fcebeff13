// Row-wise device pieces shared by the plain kernels (model_kernels.cu) and their fused forms that
// also quantize what they write for the FP8 projection after them (fused_quant.cu): one block per
// row, each thread holding kPer elements i = threadIdx.x + j * kThreads in registers. Keeping one
// definition of each computation is what makes the fused kernels' outputs the plain ones' bits.
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/kernels/block_reduce.cuh"
#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/kernels/fused_quant.h"

namespace fp8llm::cuda::detail {

// (gate / (1 + exp(-gate))) * up, rounded as the CPU backend rounds it.
__device__ __forceinline__ float silu_times(float g, float u) {
  return __fmul_rn(__fdiv_rn(g, 1.0f + expf(-g)), u);
}

// RMSNorm of row `row` (model_kernels.h): with `residual` set, x += residual first (written
// back) and the sum is normalized. Writes out's row (unless out is null) and leaves its values in
// y. out may alias x:
// every element is read before the barrier in block_sum_double and written by the same thread
// after it. The squares are summed in double, as the CPU backend sums them.
template <int kThreads, int kPer>
__device__ __forceinline__ void rms_norm_row(float* x, const float* __restrict__ residual,
                                             int64_t row, int64_t dim,
                                             const __nv_bfloat16* __restrict__ w, float eps,
                                             float* out, float (&y)[kPer]) {
  float* xr = x + row * dim;
  float v[kPer];
  // The weights are requested with the row, not after the sum: at one token the kernel is a
  // chain of memory round trips, and this takes one out of it.
  __nv_bfloat16 wv[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
    v[j] = i < dim ? xr[i] : 0.0f;
    wv[j] = i < dim ? w[i] : __float2bfloat16(0.0f);
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
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
    y[j] = i < dim ? __fmul_rn(__bfloat162float(wv[j]), __fmul_rn(v[j], inv_rms)) : 0.0f;
    if (out != nullptr && i < dim) out[row * dim + i] = y[j];
  }
}

// Where the scale of `group` (0 for the row scheme) of row `row` of `rows` goes (fused_quant.h).
__device__ __forceinline__ float* scale_slot(const Fp8QuantizedOut& o, int64_t rows, int64_t row,
                                             int64_t group) {
  return row < o.rows_lt ? o.s1 + group * o.rows_lt + row
                         : o.s2 + group * (rows - o.rows_lt) + (row - o.rows_lt);
}

// Quantizes the values y of row `row` (of `rows`; element i = threadIdx.x + j * kThreads) into o
// exactly as the activation quantizer (fp8_act_quant.cu) quantizes the same values read from
// memory, with the module's scale rule (amax * float32(1/448)): per row, or per 128 consecutive
// columns. A block-scheme group is 128 consecutive threads at one j (kThreads is a multiple of
// 128), four whole warps.
template <int kThreads, int kPer>
__device__ __forceinline__ void quantize_row(const float (&y)[kPer], int64_t row, int64_t rows,
                                             int64_t dim, const Fp8QuantizedOut& o) {
  static_assert(kThreads % kQuantBlock == 0, "a group is whole warps of one j");
  constexpr int kWarpsPerGroup = kQuantBlock / 32;
  uint8_t* qr = o.q + row * dim;
  if (o.scheme == Fp8Scheme::Row) {
    float amax = 0.0f;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
      if (i < dim) amax = nan_max(amax, fabsf(y[j]));
    }
    amax = block_max<kThreads, true>(amax);
    const float s = fp8_scale_from_amax<false>(amax);
    if (threadIdx.x == 0) *scale_slot(o, rows, row, 0) = s;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
      if (i < dim) qr[i] = fp8_quantize(y[j], s);
    }
    return;
  }
  __shared__ float s_amax[kPer][kThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
    const float a = warp_max<true>(i < dim ? fabsf(y[j]) : 0.0f);
    if (lane == 0) s_amax[j][warp] = a;
  }
  __syncthreads();
  const int first_warp = warp / kWarpsPerGroup * kWarpsPerGroup;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
    if (i >= dim) continue;
    float amax = 0.0f;
#pragma unroll
    for (int x = 0; x < kWarpsPerGroup; ++x) amax = nan_max(amax, s_amax[j][first_warp + x]);
    const float s = fp8_scale_from_amax<false>(amax);
    if (i % kQuantBlock == 0) *scale_slot(o, rows, row, i / kQuantBlock) = s;
    qr[i] = fp8_quantize(y[j], s);
  }
}

}  // namespace fp8llm::cuda::detail
