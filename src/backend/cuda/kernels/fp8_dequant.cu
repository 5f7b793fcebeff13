// Dequantization (deq(q) = float32(q) * s) and the bare e4m3 encoder, for checking the kernels.
#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

using detail::e4m3_to_float;
using detail::kQuantBlock;

constexpr int kThreads = 256;

unsigned grid_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
}

__global__ void dequantize_weight_kernel(bool block, const uint8_t* __restrict__ q,
                                         const float* __restrict__ scales, int64_t scale_ld,
                                         int64_t n, int64_t k, float* __restrict__ out) {
  const int64_t total = n * k;
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * kThreads) {
    const int64_t r = i / k;
    const int64_t c = i % k;
    const float s = block ? scales[(r / kQuantBlock) * scale_ld + c / kQuantBlock] : scales[r];
    out[i] = e4m3_to_float(q[i]) * s;
  }
}

__global__ void dequantize_act_kernel(bool block, const uint8_t* __restrict__ q,
                                      const float* __restrict__ scales, int64_t t, int64_t k,
                                      float* __restrict__ out) {
  const int64_t total = t * k;
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * kThreads) {
    const int64_t r = i / k;
    const int64_t c = i % k;
    const float s = block ? scales[(c / kQuantBlock) * t + r] : scales[r];
    out[i] = e4m3_to_float(q[i]) * s;
  }
}

__global__ void float_to_e4m3_kernel(const float* __restrict__ in, uint8_t* __restrict__ out,
                                     int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * kThreads) {
    out[i] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(in[i], __NV_SATFINITE, __NV_E4M3));
  }
}

}  // namespace

void launch_dequantize_weight(Fp8Scheme scheme, const uint8_t* q, const float* scales,
                              int64_t scale_ld, int64_t n, int64_t k, float* out,
                              cudaStream_t stream) {
  if (n <= 0 || k <= 0) return;
  dequantize_weight_kernel<<<grid_for(n * k), kThreads, 0, stream>>>(scheme == Fp8Scheme::Block, q,
                                                                     scales, scale_ld, n, k, out);
  CUDA_CHECK_LAUNCH();
}

void launch_dequantize_activations(Fp8Scheme scheme, const uint8_t* q, const float* scales,
                                   int64_t t, int64_t k, float* out, cudaStream_t stream) {
  if (t <= 0 || k <= 0) return;
  dequantize_act_kernel<<<grid_for(t * k), kThreads, 0, stream>>>(scheme == Fp8Scheme::Block, q,
                                                                  scales, t, k, out);
  CUDA_CHECK_LAUNCH();
}

void launch_float_to_e4m3(const float* in, uint8_t* out, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  float_to_e4m3_kernel<<<grid_for(count), kThreads, 0, stream>>>(in, out, count);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
