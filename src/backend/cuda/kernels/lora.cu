// Kernels of lora.h.
#include "backend/cuda/kernels/block_reduce.cuh"
#include "backend/cuda/kernels/lora.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kShrinkWarps = 8;
constexpr int kExpandThreads = 256;

// grid (tokens): warp w computes u[t, r] for r = w, w + kShrinkWarps, ...
__global__ void __launch_bounds__(kShrinkWarps * 32)
    lora_shrink_kernel(const float* __restrict__ x, int64_t in, int64_t max_rank,
                       const __nv_bfloat16* __restrict__ a, int64_t slot_stride,
                       const int32_t* __restrict__ token_lora, float* __restrict__ u) {
  const int64_t t = blockIdx.x;
  const int32_t slot = token_lora[t];
  if (slot < 0) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float* xr = x + t * in;
  const __nv_bfloat16* as = a + static_cast<int64_t>(slot) * slot_stride;
  for (int64_t r = warp; r < max_rank; r += kShrinkWarps) {
    const __nv_bfloat16* ar = as + r * in;
    float sum = 0.0f;
    for (int64_t k = lane; k < in; k += 32) sum += xr[k] * __bfloat162float(ar[k]);
    sum = warp_sum(sum);
    if (lane == 0) u[t * max_rank + r] = sum;
  }
}

// grid (ceil(out / kExpandThreads), tokens): thread n adds scale * (u[t] · B[n]) to y[t, n].
__global__ void __launch_bounds__(kExpandThreads)
    lora_expand_kernel(float* __restrict__ y, int64_t out, int64_t max_rank,
                       const __nv_bfloat16* __restrict__ b, int64_t slot_stride,
                       const float* __restrict__ scales, const int32_t* __restrict__ token_lora,
                       const float* __restrict__ u) {
  const int64_t t = blockIdx.y;
  const int32_t slot = token_lora[t];
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kExpandThreads + threadIdx.x;
  if (slot < 0 || n >= out) return;
  const __nv_bfloat16* br = b + static_cast<int64_t>(slot) * slot_stride + n * max_rank;
  const float* ur = u + t * max_rank;
  float d = 0.0f;
  for (int64_t r = 0; r < max_rank; ++r)
    d = __fadd_rn(d, __fmul_rn(ur[r], __bfloat162float(br[r])));
  float* yr = y + t * out + n;
  *yr = __fadd_rn(*yr, __fmul_rn(scales[slot], d));
}

}  // namespace

void launch_lora(const LoraLaunch& l, cudaStream_t stream) {
  if (l.tokens <= 0) return;
  lora_shrink_kernel<<<static_cast<unsigned>(l.tokens), kShrinkWarps * 32, 0, stream>>>(
      l.x, l.in, l.max_rank, l.a, l.slot_stride, l.token_lora, l.u);
  CUDA_CHECK_LAUNCH();
  const dim3 grid(static_cast<unsigned>((l.out + kExpandThreads - 1) / kExpandThreads),
                  static_cast<unsigned>(l.tokens));
  lora_expand_kernel<<<grid, kExpandThreads, 0, stream>>>(
      l.y, l.out, l.max_rank, l.b, l.slot_stride, l.scales, l.token_lora, l.u);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
