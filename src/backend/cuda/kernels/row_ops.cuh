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

// The vector layout of the same two computations: thread i holds kVec runs of four consecutive
// elements, run j at element 4 (threadIdx.x + j * kThreads), moved with 16-byte loads and stores.
// A block-scheme group (128 columns) is then one warp's runs at one j, so its amax is a warp max
// with no shared memory or barrier, and a lane stores its four codes as one word. At 256 rows of
// 4,096 the scalar layout's fused norm took 2.5 times its bytes' time on the H100, this one 1.9
// times. For rows whose length is a multiple of 128 and whose pointers are 16-byte aligned
// (norm_vec_fits).
// The squares are summed in double in another order than the scalar layout's; for rows of up to
// 16,384 the double's rounding error stays below 2^-39 of the sum, so the fp32 variance differs
// only where the exact sum lies that close to a rounding boundary of fp32.
inline constexpr int kNormVecThreads = 512;

__host__ __device__ inline bool norm_vec_fits(int64_t dim, const void* x, const void* residual,
                                              const void* w, const void* out, const void* codes) {
  const auto off = [](const void* p, unsigned bytes) {
    return static_cast<unsigned>(reinterpret_cast<uintptr_t>(p) % bytes);
  };
  return dim > 0 && dim % 128 == 0 && dim <= 16384 && off(x, 16) == 0 && off(residual, 16) == 0 &&
         off(out, 16) == 0 && off(w, 8) == 0 && off(codes, 4) == 0;
}

template <int kThreads, int kVec>
__device__ __forceinline__ void rms_norm_row_vec(float* x, const float* __restrict__ residual,
                                                 int64_t row, int64_t dim,
                                                 const __nv_bfloat16* __restrict__ w, float eps,
                                                 float* out, float4 (&y)[kVec]) {
  float* xr = x + row * dim;
  const float* rr = residual != nullptr ? residual + row * dim : nullptr;
  float4 v[kVec], r[kVec];
  uint2 wv[kVec];
  // Every load is issued before any store (out may alias x).
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const int64_t i = 4 * (threadIdx.x + static_cast<int64_t>(j) * kThreads);
    const bool in = i < dim;
    v[j] = in ? *reinterpret_cast<const float4*>(xr + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    wv[j] = in ? *reinterpret_cast<const uint2*>(w + i) : make_uint2(0u, 0u);
    r[j] = in && rr != nullptr ? *reinterpret_cast<const float4*>(rr + i)
                               : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  if (rr != nullptr) {
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const int64_t i = 4 * (threadIdx.x + static_cast<int64_t>(j) * kThreads);
      v[j] = make_float4(__fadd_rn(v[j].x, r[j].x), __fadd_rn(v[j].y, r[j].y),
                         __fadd_rn(v[j].z, r[j].z), __fadd_rn(v[j].w, r[j].w));
      if (i < dim) *reinterpret_cast<float4*>(xr + i) = v[j];
    }
  }
  double ss = 0.0;
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    ss += __fmul_rn(v[j].x, v[j].x);
    ss += __fmul_rn(v[j].y, v[j].y);
    ss += __fmul_rn(v[j].z, v[j].z);
    ss += __fmul_rn(v[j].w, v[j].w);
  }
  ss = block_sum_double<kThreads>(ss);
  const float variance = static_cast<float>(ss / static_cast<double>(dim));
  const float inv_rms = static_cast<float>(1.0 / sqrt(static_cast<double>(variance + eps)));
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const int64_t i = 4 * (threadIdx.x + static_cast<int64_t>(j) * kThreads);
    const float2 w01 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&wv[j].x));
    const float2 w23 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&wv[j].y));
    y[j] = make_float4(
        __fmul_rn(w01.x, __fmul_rn(v[j].x, inv_rms)), __fmul_rn(w01.y, __fmul_rn(v[j].y, inv_rms)),
        __fmul_rn(w23.x, __fmul_rn(v[j].z, inv_rms)), __fmul_rn(w23.y, __fmul_rn(v[j].w, inv_rms)));
    if (i >= dim) y[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (out != nullptr && i < dim) *reinterpret_cast<float4*>(out + row * dim + i) = y[j];
  }
}

__device__ __forceinline__ float nan_max4(float4 y) {
  return nan_max(nan_max(fabsf(y.x), fabsf(y.y)), nan_max(fabsf(y.z), fabsf(y.w)));
}

__device__ __forceinline__ uint32_t fp8_quantize4(float4 y, float s) {
  return static_cast<uint32_t>(fp8_quantize(y.x, s)) |
         static_cast<uint32_t>(fp8_quantize(y.y, s)) << 8 |
         static_cast<uint32_t>(fp8_quantize(y.z, s)) << 16 |
         static_cast<uint32_t>(fp8_quantize(y.w, s)) << 24;
}

// quantize_row for rms_norm_row_vec's layout: the same codes and scales.
template <int kThreads, int kVec>
__device__ __forceinline__ void quantize_row_vec(const float4 (&y)[kVec], int64_t row, int64_t rows,
                                                 int64_t dim, const Fp8QuantizedOut& o) {
  uint8_t* qr = o.q + row * dim;
  if (o.scheme == Fp8Scheme::Row) {
    float amax = 0.0f;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const int64_t i = 4 * (threadIdx.x + static_cast<int64_t>(j) * kThreads);
      if (i < dim) amax = nan_max(amax, nan_max4(y[j]));
    }
    amax = block_max<kThreads, true>(amax);
    const float s = fp8_scale_from_amax<false>(amax);
    if (threadIdx.x == 0) *scale_slot(o, rows, row, 0) = s;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const int64_t i = 4 * (threadIdx.x + static_cast<int64_t>(j) * kThreads);
      if (i < dim) *reinterpret_cast<uint32_t*>(qr + i) = fp8_quantize4(y[j], s);
    }
    return;
  }
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const int64_t i = 4 * (threadIdx.x + static_cast<int64_t>(j) * kThreads);
    if (i - 4 * lane >= dim) continue;  // the warp's run lies past the row (dim % 128 == 0)
    const float s = fp8_scale_from_amax<false>(warp_max<true>(nan_max4(y[j])));
    if (lane == 0) *scale_slot(o, rows, row, i / kQuantBlock) = s;
    *reinterpret_cast<uint32_t*>(qr + i) = fp8_quantize4(y[j], s);
  }
}

// The vector layout's run count for a row: a power of two, kNormVecThreads * 4 * runs >= dim.
template <typename Launch>
void by_vec_width(int64_t dim, Launch&& launch) {
  if (dim <= 2048) {
    launch.template operator()<kNormVecThreads, 1>();
  } else if (dim <= 4096) {
    launch.template operator()<kNormVecThreads, 2>();
  } else if (dim <= 8192) {
    launch.template operator()<kNormVecThreads, 4>();
  } else {
    launch.template operator()<kNormVecThreads, 8>();
  }
}

}  // namespace fp8llm::cuda::detail
