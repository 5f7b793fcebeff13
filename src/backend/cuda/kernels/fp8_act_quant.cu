// Activation quantization kernels: per token (one block per row) and per token per 128 columns
// (one warp per 128-column group), from bf16 or fp32 activations. The bf16 kernels, and the fp32
// row kernel, have vector forms (16-byte loads holding the row in registers between the amax and
// the quantization pass; 8-byte loads per lane for bf16 groups) used when the row length and
// pointers allow; they compute the same values as the scalar forms. Every kernel is built for both
// scale rules (kDivide).
#include <stdexcept>

#include "backend/cuda/kernels/dependent_launch.cuh"
#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/dependent_launch.h"

namespace fp8llm::cuda {
namespace {

using detail::block_max;
using detail::fp8_quantize;
using detail::fp8_scale_from_amax;
using detail::kQuantBlock;
using detail::nan_max;
using detail::to_float;
using detail::warp_max;

constexpr int kRowThreads = 256;
constexpr int kGroupThreads = 256;  // 8 warps, one 128-column group each
constexpr int kGroupsPerBlock = kGroupThreads / 32;

template <typename T, bool kDivide>
__global__ void __launch_bounds__(kRowThreads)
    quantize_act_row_kernel(const T* __restrict__ x, int64_t k, uint8_t* __restrict__ q,
                            float* __restrict__ scales) {
  wait_for_prior_grids();   // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();  // the projection after it may start reading its weights
  const int64_t row = blockIdx.x;
  const T* xr = x + row * k;
  uint8_t* qr = q + row * k;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < k; i += kRowThreads)
    amax = nan_max(amax, fabsf(to_float(xr[i])));
  amax = block_max<kRowThreads, true>(amax);
  const float s = fp8_scale_from_amax<kDivide>(amax);
  if (threadIdx.x == 0) scales[row] = s;
  for (int64_t i = threadIdx.x; i < k; i += kRowThreads) qr[i] = fp8_quantize(to_float(xr[i]), s);
}

// Lane l of the warp for group g handles columns g*128 + l + 32*j, j < 4 (coalesced).
template <typename T, bool kDivide>
__global__ void __launch_bounds__(kGroupThreads)
    quantize_act_group_kernel(const T* __restrict__ x, int64_t t, int64_t k,
                              uint8_t* __restrict__ q, float* __restrict__ scales) {
  wait_for_prior_grids();   // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();  // the projection after it may start reading its weights
  const int64_t row = blockIdx.x;
  const int lane = threadIdx.x & 31;
  const int64_t group = static_cast<int64_t>(blockIdx.y) * kGroupsPerBlock + (threadIdx.x >> 5);
  const int64_t groups = (k + kQuantBlock - 1) / kQuantBlock;
  if (group >= groups) return;  // whole warps only: no block-level barrier below
  const int64_t c0 = group * kQuantBlock;
  const T* xr = x + row * k;
  float v[kQuantBlock / 32];
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < kQuantBlock / 32; ++j) {
    const int64_t c = c0 + lane + 32 * j;
    v[j] = c < k ? to_float(xr[c]) : 0.0f;
    amax = nan_max(amax, fabsf(v[j]));
  }
  amax = warp_max<true>(amax);
  const float s = fp8_scale_from_amax<kDivide>(amax);
  if (lane == 0) scales[group * t + row] = s;
#pragma unroll
  for (int j = 0; j < kQuantBlock / 32; ++j) {
    const int64_t c = c0 + lane + 32 * j;
    if (c < k) q[row * k + c] = fp8_quantize(v[j], s);
  }
}

__device__ __forceinline__ void bf16x8_to_float(const uint4& v, float f[8]) {
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 p = __bfloat1622float2(h[j]);
    f[2 * j] = p.x;
    f[2 * j + 1] = p.y;
  }
}

__device__ __forceinline__ uint32_t pack4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return uint32_t{a} | (uint32_t{b} << 8) | (uint32_t{c} << 16) | (uint32_t{d} << 24);
}

// 16 bytes of a row for the vector row kernel: 8 bf16 or 4 fp32 values, widened, and their codes.
struct Bf16x8 {
  using Elem = __nv_bfloat16;
  using Codes = uint2;
  static constexpr int kElems = 8;
  __device__ static void widen(const uint4& v, float f[8]) { bf16x8_to_float(v, f); }
  __device__ static Codes encode(const float f[8], float s) {
    return {pack4(fp8_quantize(f[0], s), fp8_quantize(f[1], s), fp8_quantize(f[2], s),
                  fp8_quantize(f[3], s)),
            pack4(fp8_quantize(f[4], s), fp8_quantize(f[5], s), fp8_quantize(f[6], s),
                  fp8_quantize(f[7], s))};
  }
};
struct F32x4 {
  using Elem = float;
  using Codes = uint32_t;
  static constexpr int kElems = 4;
  __device__ static void widen(const uint4& v, float f[4]) {
    f[0] = __uint_as_float(v.x);
    f[1] = __uint_as_float(v.y);
    f[2] = __uint_as_float(v.z);
    f[3] = __uint_as_float(v.w);
  }
  __device__ static Codes encode(const float f[4], float s) {
    return pack4(fp8_quantize(f[0], s), fp8_quantize(f[1], s), fp8_quantize(f[2], s),
                 fp8_quantize(f[3], s));
  }
};

// Row kernel, K a multiple of V::kElems: thread i holds the 16-byte vectors i, i + 256, ...
// (kVecs of them) in registers between the amax and the quantization.
template <typename V, int kVecs, bool kDivide>
__global__ void __launch_bounds__(kRowThreads)
    quantize_act_row_vec_kernel(const typename V::Elem* __restrict__ x, int64_t k,
                                uint8_t* __restrict__ q, float* __restrict__ scales) {
  wait_for_prior_grids();   // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();  // the projection after it may start reading its weights
  const int64_t row = blockIdx.x;
  const int64_t nvec = k / V::kElems;
  const auto* xr = reinterpret_cast<const uint4*>(x + row * k);
  auto* qr = reinterpret_cast<typename V::Codes*>(q + row * k);
  uint4 v[kVecs];
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t idx = threadIdx.x + int64_t{i} * kRowThreads;
    if (idx < nvec) {
      v[i] = xr[idx];
      float f[V::kElems];
      V::widen(v[i], f);
#pragma unroll
      for (int j = 0; j < V::kElems; ++j) amax = nan_max(amax, fabsf(f[j]));
    }
  }
  amax = block_max<kRowThreads, true>(amax);
  const float s = fp8_scale_from_amax<kDivide>(amax);
  if (threadIdx.x == 0) scales[row] = s;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t idx = threadIdx.x + int64_t{i} * kRowThreads;
    if (idx < nvec) {
      float f[V::kElems];
      V::widen(v[i], f);
      qr[idx] = V::encode(f, s);
    }
  }
}

// Group kernel, K % 4 == 0: lane l of a group's warp handles columns c0 + 4l .. c0 + 4l + 3.
template <bool kDivide>
__global__ void __launch_bounds__(kGroupThreads)
    quantize_act_group_vec_kernel(const __nv_bfloat16* __restrict__ x, int64_t t, int64_t k,
                                  uint8_t* __restrict__ q, float* __restrict__ scales) {
  wait_for_prior_grids();   // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();  // the projection after it may start reading its weights
  const int64_t row = blockIdx.x;
  const int lane = threadIdx.x & 31;
  const int64_t group = static_cast<int64_t>(blockIdx.y) * kGroupsPerBlock + (threadIdx.x >> 5);
  const int64_t groups = (k + kQuantBlock - 1) / kQuantBlock;
  if (group >= groups) return;  // whole warps only: no block-level barrier below
  const int64_t c = group * kQuantBlock + 4 * lane;
  const bool valid = c < k;  // K % 4 == 0: a lane's 4 columns are all in range or all out
  float f[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (valid) {
    const uint2 v = *reinterpret_cast<const uint2*>(x + row * k + c);
    const auto* h = reinterpret_cast<const __nv_bfloat162*>(&v);
    const float2 a = __bfloat1622float2(h[0]);
    const float2 b = __bfloat1622float2(h[1]);
    f[0] = a.x;
    f[1] = a.y;
    f[2] = b.x;
    f[3] = b.y;
  }
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < 4; ++j) amax = nan_max(amax, fabsf(f[j]));
  amax = warp_max<true>(amax);
  const float s = fp8_scale_from_amax<kDivide>(amax);
  if (lane == 0) scales[group * t + row] = s;
  if (valid) {
    *reinterpret_cast<uint32_t*>(q + row * k + c) = pack4(
        fp8_quantize(f[0], s), fp8_quantize(f[1], s), fp8_quantize(f[2], s), fp8_quantize(f[3], s));
  }
}

bool aligned(const void* p, uintptr_t bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

// Calls launch.template operator()<kVecs>() with the first of kVecs, 2 kVecs, ... (up to kMax)
// that holds per_thread vectors a thread; false where even kMax does not (rows longer than the
// registers hold: the scalar kernel re-reads instead).
template <int kVecs, int kMax, typename Launch>
bool launch_with_vecs(int64_t per_thread, Launch&& launch) {
  if (per_thread <= kVecs) {
    launch.template operator()<kVecs>();
    return true;
  }
  if constexpr (kVecs * 2 <= kMax) {
    return launch_with_vecs<kVecs * 2, kMax>(per_thread, launch);
  } else {
    return false;
  }
}

// The vector forms for bf16; false when the shape or alignment needs the scalar kernels.
template <bool kDivide>
bool launch_vec(Fp8Scheme scheme, const __nv_bfloat16* x, int64_t t, int64_t k, uint8_t* q,
                float* scales, cudaStream_t stream) {
  if (scheme == Fp8Scheme::Row) {
    if (k % 8 != 0 || !aligned(x, 16) || !aligned(q, 8)) return false;
    const int64_t per_thread = (k / 8 + kRowThreads - 1) / kRowThreads;
    return launch_with_vecs<1, 8>(per_thread, [&]<int kVecs>() {
      launch_dependent(Overlap::kAll, quantize_act_row_vec_kernel<Bf16x8, kVecs, kDivide>,
                       dim3(static_cast<unsigned>(t)), dim3(kRowThreads), 0, stream, x, k, q,
                       scales);
    });
  }
  if (k % 4 != 0 || !aligned(x, 8) || !aligned(q, 4)) return false;
  const int64_t groups = fp8_block_count(k);
  const dim3 grid(static_cast<unsigned>(t),
                  static_cast<unsigned>((groups + kGroupsPerBlock - 1) / kGroupsPerBlock));
  launch_dependent(Overlap::kAll, quantize_act_group_vec_kernel<kDivide>, grid, dim3(kGroupThreads),
                   0, stream, x, t, k, q, scales);
  return true;
}

// fp32 rows (the engine's activations) in 16-byte loads, held in registers between the amax and
// the quantization; groups keep the scalar kernel, whose warp reads each value once.
template <bool kDivide>
bool launch_vec(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, uint8_t* q, float* scales,
                cudaStream_t stream) {
  if (scheme != Fp8Scheme::Row || k % 4 != 0 || !aligned(x, 16) || !aligned(q, 4)) return false;
  const int64_t per_thread = (k / 4 + kRowThreads - 1) / kRowThreads;
  return launch_with_vecs<4, 16>(per_thread, [&]<int kVecs>() {
    launch_dependent(Overlap::kAll, quantize_act_row_vec_kernel<F32x4, kVecs, kDivide>,
                     dim3(static_cast<unsigned>(t)), dim3(kRowThreads), 0, stream, x, k, q, scales);
  });
}

template <bool kDivide, typename T>
void launch_rule(Fp8Scheme scheme, const T* x, int64_t t, int64_t k, uint8_t* q, float* scales,
                 cudaStream_t stream) {
  if (!launch_vec<kDivide>(scheme, x, t, k, q, scales, stream)) {
    if (scheme == Fp8Scheme::Row) {
      launch_dependent(Overlap::kAll, quantize_act_row_kernel<T, kDivide>,
                       dim3(static_cast<unsigned>(t)), dim3(kRowThreads), 0, stream, x, k, q,
                       scales);
    } else {
      const int64_t groups = fp8_block_count(k);
      const dim3 grid(static_cast<unsigned>(t),
                      static_cast<unsigned>((groups + kGroupsPerBlock - 1) / kGroupsPerBlock));
      launch_dependent(Overlap::kAll, quantize_act_group_kernel<T, kDivide>, grid,
                       dim3(kGroupThreads), 0, stream, x, t, k, q, scales);
    }
  }
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch(Fp8Scheme scheme, const T* x, int64_t t, int64_t k, uint8_t* q, float* scales,
            Fp8ScaleRule rule, cudaStream_t stream) {
  if (t <= 0 || k <= 0) return;
  if (t > 0x7fffffff) throw std::invalid_argument("launch_quantize_activations: too many rows");
  if (rule == Fp8ScaleRule::Divide) {
    launch_rule<true>(scheme, x, t, k, q, scales, stream);
  } else {
    launch_rule<false>(scheme, x, t, k, q, scales, stream);
  }
}

}  // namespace

void launch_quantize_activations(Fp8Scheme scheme, const __nv_bfloat16* x, int64_t t, int64_t k,
                                 uint8_t* q, float* scales, cudaStream_t stream,
                                 Fp8ScaleRule rule) {
  launch(scheme, x, t, k, q, scales, rule, stream);
}

void launch_quantize_activations(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, uint8_t* q,
                                 float* scales, cudaStream_t stream, Fp8ScaleRule rule) {
  launch(scheme, x, t, k, q, scales, rule, stream);
}

}  // namespace fp8llm::cuda
