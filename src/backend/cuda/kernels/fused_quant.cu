// Kernels of fused_quant.h: the plain kernels' row computations (row_ops.cuh), then the row's
// quantization from the registers that hold it.
#include "backend/cuda/kernels/fused_quant.h"

#include <cstdint>
#include <stdexcept>

#include "backend/cuda/kernels/dependent_launch.cuh"
#include "backend/cuda/kernels/row_ops.cuh"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/dependent_launch.h"

namespace fp8llm::cuda {
namespace {

using detail::fp8_scale_from_amax;
using detail::kQuantBlock;
using detail::warp_max;

template <int kThreads, int kPer>
__global__ void __launch_bounds__(kThreads)
    rms_norm_quantize_kernel(float* x, const float* __restrict__ residual, int64_t dim,
                             const __nv_bfloat16* __restrict__ w, float eps, float* out,
                             Fp8QuantizedOut o) {
  wait_for_prior_grids();   // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();  // the projection after it may start reading its weights
  float y[kPer];
  detail::rms_norm_row<kThreads, kPer>(x, residual, blockIdx.x, dim, w, eps, out, y);
  detail::quantize_row<kThreads, kPer>(y, blockIdx.x, gridDim.x, dim, o);
}

template <int kThreads, int kVec>
__global__ void __launch_bounds__(kThreads)
    rms_norm_quantize_vec_kernel(float* x, const float* __restrict__ residual, int64_t dim,
                                 const __nv_bfloat16* __restrict__ w, float eps, float* out,
                                 Fp8QuantizedOut o) {
  wait_for_prior_grids();   // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();  // the projection after it may start reading its weights
  float4 y[kVec];
  detail::rms_norm_row_vec<kThreads, kVec>(x, residual, blockIdx.x, dim, w, eps, out, y);
  detail::quantize_row_vec<kThreads, kVec>(y, blockIdx.x, gridDim.x, dim, o);
}

template <int kThreads, int kPer>
__global__ void __launch_bounds__(kThreads)
    silu_mul_quantize_kernel(const float* gate, const float* __restrict__ up, int64_t dim,
                             float* out, Fp8QuantizedOut o) {
  wait_for_prior_grids();   // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();  // the projection after it may start reading its weights
  const int64_t row = blockIdx.x;
  // Every value is read before any is written: out may be gate, and a store between the loads
  // would keep the compiler from issuing them together (one memory round trip per element).
  float g[kPer], u[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
    g[j] = i < dim ? gate[row * dim + i] : 0.0f;
    u[j] = i < dim ? up[row * dim + i] : 0.0f;
  }
  float y[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * kThreads;
    y[j] = i < dim ? detail::silu_times(g[j], u[j]) : 0.0f;
    if (out != nullptr && i < dim) out[row * dim + i] = y[j];
  }
  detail::quantize_row<kThreads, kPer>(y, row, gridDim.x, dim, o);
}

// The gating quantized per 128 columns (Fp8Scheme::Block), which needs no row-wide reduction:
// a warp takes one group, four consecutive elements a lane in 16-byte loads, and a block takes
// kGroupWarps groups of a row. Against the row kernel (one block a row, up to 1,024 threads,
// a single wave of loads, then the stores) at 256 rows of 14,336 this gives the SMs many small
// blocks whose loads and stores overlap. The values, amax and codes are the row kernel's: the
// same silu_times, and a max does not depend on the order it is taken in. Each lane reads its
// four elements before writing them, so out may be gate.
constexpr int kGroupWarps = 4;
__global__ void __launch_bounds__(kGroupWarps * 32)
    silu_mul_quantize_groups_kernel(const float* gate, const float* __restrict__ up, int64_t dim,
                                    int64_t rows, float* out, Fp8QuantizedOut o) {
  wait_for_prior_grids();   // launched to overlap the kernel before it (launch_dependent)
  allow_dependent_grids();  // the projection after it may start reading its weights
  const int64_t row = blockIdx.y;
  const int lane = threadIdx.x & 31;
  const int64_t group = static_cast<int64_t>(blockIdx.x) * kGroupWarps + (threadIdx.x >> 5);
  const int64_t i = group * kQuantBlock + 4 * lane;  // this lane's first column
  if (group * kQuantBlock >= dim) return;            // whole warps leave together
  const bool in = i < dim;                           // dim % 4 == 0: all four or none
  const int64_t at = row * dim + i;
  float4 g = make_float4(0.0f, 0.0f, 0.0f, 0.0f), u = g;
  if (in) {
    g = *reinterpret_cast<const float4*>(gate + at);
    u = *reinterpret_cast<const float4*>(up + at);
  }
  const float4 y = make_float4(detail::silu_times(g.x, u.x), detail::silu_times(g.y, u.y),
                               detail::silu_times(g.z, u.z), detail::silu_times(g.w, u.w));
  const float amax = warp_max<true>(in ? detail::nan_max4(y) : 0.0f);
  const float s = fp8_scale_from_amax<false>(amax);
  if (lane == 0) *detail::scale_slot(o, rows, row, group) = s;
  if (!in) return;
  if (out != nullptr) *reinterpret_cast<float4*>(out + at) = y;
  *reinterpret_cast<uint32_t*>(o.q + at) = detail::fp8_quantize4(y, s);
}

bool aligned(const void* p, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// The plain kernels' thread counts for each row length.
template <typename Launch>
void by_width(int64_t dim, Launch&& launch) {
  if (dim <= 256) {
    launch.template operator()<128, 2>();
  } else if (dim <= 4096) {
    launch.template operator()<512, 8>();
  } else if (dim <= 16384) {
    launch.template operator()<1024, 16>();
  } else {
    throw std::invalid_argument("fused quantization: rows longer than 16384 are not supported");
  }
}

void check(int64_t rows, const Fp8QuantizedOut& q) {
  if (q.q == nullptr || q.rows_lt < 0 || q.rows_lt > rows || (q.rows_lt > 0 && q.s1 == nullptr) ||
      (q.rows_lt < rows && q.s2 == nullptr))
    throw std::invalid_argument("fused quantization: no room for the codes or scales");
  if (rows > 0x7fffffff) throw std::invalid_argument("fused quantization: too many rows");
}

}  // namespace

bool fused_quant_supports(int64_t dim) {
  return dim > 0 && dim <= 16384;
}

void launch_rms_norm_quantize(float* x, const float* residual, int64_t rows, int64_t dim,
                              const __nv_bfloat16* w, float eps, float* out,
                              const Fp8QuantizedOut& quantized, cudaStream_t stream) {
  if (rows <= 0) return;
  check(rows, quantized);
  if (detail::norm_vec_fits(dim, x, residual, w, out, quantized.q)) {
    detail::by_vec_width(dim, [&]<int kThreads, int kVec>() {
      launch_dependent(Overlap::kAll, rms_norm_quantize_vec_kernel<kThreads, kVec>,
                       dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, stream, x, residual,
                       dim, w, eps, out, quantized);
    });
    CUDA_CHECK_LAUNCH();
    return;
  }
  by_width(dim, [&]<int kThreads, int kPer>() {
    launch_dependent(Overlap::kAll, rms_norm_quantize_kernel<kThreads, kPer>,
                     dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, stream, x, residual, dim,
                     w, eps, out, quantized);
  });
  CUDA_CHECK_LAUNCH();
}

void launch_silu_mul_quantize(const float* gate, const float* up, int64_t rows, int64_t dim,
                              float* out, const Fp8QuantizedOut& quantized, cudaStream_t stream) {
  if (rows <= 0) return;
  check(rows, quantized);
  if (quantized.scheme == Fp8Scheme::Block && dim % 4 == 0 && aligned(gate, 16) &&
      aligned(up, 16) && aligned(out, 16) && aligned(quantized.q, 4) && rows <= 65535) {
    const int64_t groups = (dim + kQuantBlock - 1) / kQuantBlock;
    const dim3 grid(static_cast<unsigned>((groups + kGroupWarps - 1) / kGroupWarps),
                    static_cast<unsigned>(rows));
    launch_dependent(Overlap::kAll, silu_mul_quantize_groups_kernel, grid, dim3(kGroupWarps * 32),
                     0, stream, gate, up, dim, rows, out, quantized);
    CUDA_CHECK_LAUNCH();
    return;
  }
  by_width(dim, [&]<int kThreads, int kPer>() {
    launch_dependent(Overlap::kAll, silu_mul_quantize_kernel<kThreads, kPer>,
                     dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, stream, gate, up, dim,
                     out, quantized);
  });
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
