// Kernels of fused_quant.h: the plain kernels' row computations (row_ops.cuh), then the row's
// quantization from the registers that hold it.
#include "backend/cuda/kernels/fused_quant.h"

#include <stdexcept>

#include "backend/cuda/kernels/row_ops.cuh"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

template <int kThreads, int kPer>
__global__ void __launch_bounds__(kThreads)
    rms_norm_quantize_kernel(float* x, const float* __restrict__ residual, int64_t dim,
                             const __nv_bfloat16* __restrict__ w, float eps, float* out,
                             Fp8QuantizedOut o) {
  float y[kPer];
  detail::rms_norm_row<kThreads, kPer>(x, residual, blockIdx.x, dim, w, eps, out, y);
  detail::quantize_row<kThreads, kPer>(y, blockIdx.x, gridDim.x, dim, o);
}

template <int kThreads, int kPer>
__global__ void __launch_bounds__(kThreads)
    silu_mul_quantize_kernel(const float* gate, const float* __restrict__ up, int64_t dim,
                             float* out, Fp8QuantizedOut o) {
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
    if (i < dim) out[row * dim + i] = y[j];
  }
  detail::quantize_row<kThreads, kPer>(y, row, gridDim.x, dim, o);
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
  by_width(dim, [&]<int kThreads, int kPer>() {
    rms_norm_quantize_kernel<kThreads, kPer><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x, residual, dim, w, eps, out, quantized);
  });
  CUDA_CHECK_LAUNCH();
}

void launch_silu_mul_quantize(const float* gate, const float* up, int64_t rows, int64_t dim,
                              float* out, const Fp8QuantizedOut& quantized, cudaStream_t stream) {
  if (rows <= 0) return;
  check(rows, quantized);
  by_width(dim, [&]<int kThreads, int kPer>() {
    silu_mul_quantize_kernel<kThreads, kPer>
        <<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(gate, up, dim, out, quantized);
  });
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
