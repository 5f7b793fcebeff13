// Weight quantization kernels (row: one block per output row; block: one block per 128x128 tile).
#include <stdexcept>

#include "backend/cuda/kernels/fp8_device.cuh"
#include "backend/cuda/kernels/fp8_quant.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

using detail::block_max;
using detail::fp8_quantize;
using detail::fp8_weight_scale_from_amax;
using detail::kQuantBlock;

constexpr int kRowThreads = 256;
constexpr int kTileThreads = 256;

__global__ void __launch_bounds__(kRowThreads)
    quantize_weight_row_kernel(const __nv_bfloat16* __restrict__ w, int64_t k,
                               uint8_t* __restrict__ q, float* __restrict__ scales,
                               int* __restrict__ nonfinite) {
  const int64_t row = blockIdx.x;
  const __nv_bfloat16* wr = w + row * k;
  uint8_t* qr = q + row * k;
  float amax = 0.0f;
  bool finite = true;
  for (int64_t i = threadIdx.x; i < k; i += kRowThreads) {
    const float v = __bfloat162float(wr[i]);
    finite = finite && isfinite(v);
    amax = fmaxf(amax, fabsf(v));
  }
  amax = block_max<kRowThreads, false>(amax);
  if (__syncthreads_or(!finite) && threadIdx.x == 0) atomicExch(nonfinite, 1);
  const float s = fp8_weight_scale_from_amax(amax);
  if (threadIdx.x == 0) scales[row] = s;
  for (int64_t i = threadIdx.x; i < k; i += kRowThreads) {
    qr[i] = fp8_quantize(__bfloat162float(wr[i]), s);
  }
}

// Threads 0..127 and 128..255 take alternate rows of the tile; within a row the 128 columns are
// consecutive, so each half-block reads 256 contiguous bytes.
__global__ void __launch_bounds__(kTileThreads)
    quantize_weight_block_kernel(const __nv_bfloat16* __restrict__ w, int64_t n, int64_t k,
                                 uint8_t* __restrict__ q, float* __restrict__ scales,
                                 int64_t scale_ld, int* __restrict__ nonfinite) {
  const int64_t kb = blockIdx.x;
  const int64_t nb = blockIdx.y;
  const int64_t r0 = nb * kQuantBlock;
  const int64_t c0 = kb * kQuantBlock;
  const int rows = static_cast<int>(n - r0 < kQuantBlock ? n - r0 : kQuantBlock);
  const int cols = static_cast<int>(k - c0 < kQuantBlock ? k - c0 : kQuantBlock);
  const int col = threadIdx.x % kQuantBlock;
  const int first_row = threadIdx.x / kQuantBlock;
  constexpr int kRowStep = kTileThreads / kQuantBlock;
  float amax = 0.0f;
  bool finite = true;
  if (col < cols) {
    for (int r = first_row; r < rows; r += kRowStep) {
      const float v = __bfloat162float(w[(r0 + r) * k + c0 + col]);
      finite = finite && isfinite(v);
      amax = fmaxf(amax, fabsf(v));
    }
  }
  amax = block_max<kTileThreads, false>(amax);
  if (__syncthreads_or(!finite) && threadIdx.x == 0) atomicExch(nonfinite, 1);
  const float s = fp8_weight_scale_from_amax(amax);
  if (threadIdx.x == 0) scales[nb * scale_ld + kb] = s;
  if (col < cols) {
    for (int r = first_row; r < rows; r += kRowStep) {
      const int64_t idx = (r0 + r) * k + c0 + col;
      q[idx] = fp8_quantize(__bfloat162float(w[idx]), s);
    }
  }
}

}  // namespace

int64_t weight_scale_elems(Fp8Scheme scheme, int64_t n, int64_t k, int64_t scale_ld) {
  (void)k;
  return scheme == Fp8Scheme::Row ? n : fp8_block_count(n) * scale_ld;
}

int64_t activation_scale_elems(Fp8Scheme scheme, int64_t t, int64_t k) {
  return scheme == Fp8Scheme::Row ? t : t * fp8_block_count(k);
}

void launch_quantize_weight(Fp8Scheme scheme, const __nv_bfloat16* w, int64_t n, int64_t k,
                            uint8_t* q, float* scales, int64_t scale_ld, int* nonfinite,
                            cudaStream_t stream) {
  if (n <= 0 || k <= 0) throw std::invalid_argument("launch_quantize_weight: empty weight");
  if (scheme == Fp8Scheme::Row) {
    quantize_weight_row_kernel<<<static_cast<unsigned>(n), kRowThreads, 0, stream>>>(
        w, k, q, scales, nonfinite);
  } else {
    if (scale_ld < fp8_block_count(k)) {
      throw std::invalid_argument("launch_quantize_weight: scale_ld smaller than ceil(K/128)");
    }
    const dim3 grid(static_cast<unsigned>(fp8_block_count(k)),
                    static_cast<unsigned>(fp8_block_count(n)));
    quantize_weight_block_kernel<<<grid, kTileThreads, 0, stream>>>(w, n, k, q, scales, scale_ld,
                                                                    nonfinite);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
