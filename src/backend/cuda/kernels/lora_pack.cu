// Kernel of lora_pack.h.
#include <cuda_fp16.h>

#include "backend/cuda/kernels/lora_pack.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kBlocksPerItem = 16;

// grid (items, kBlocksPerItem): the blocks of an item stride over its elements.
__global__ void __launch_bounds__(kThreads)
    lora_pack_kernel(const LoraPackItem* __restrict__ items, bool write,
                     int32_t* __restrict__ first_bad) {
  const LoraPackItem it = items[blockIdx.x];
  const int64_t n = it.rows * it.cols;
  bool bad = false;
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.y) * kThreads) {
    float v;
    switch (it.dtype) {
      case PackSource::BF16:
        v = __bfloat162float(static_cast<const __nv_bfloat16*>(it.src)[i]);
        break;
      case PackSource::F16:
        v = __half2float(static_cast<const __half*>(it.src)[i]);
        break;
      default:
        v = static_cast<const float*>(it.src)[i];
        break;
    }
    bad |= !isfinite(v);
    if (!write) continue;
    const int64_t row = i / it.cols, col = i - row * it.cols;
    it.dst[row * it.dst_ld + col] = __float2bfloat16_rn(v);
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0)
    atomicMin(first_bad, static_cast<int32_t>(blockIdx.x));
}

}  // namespace

void launch_lora_pack(const LoraPackItem* items, int count, bool write, int32_t* first_bad,
                      cudaStream_t stream) {
  if (count <= 0) return;
  lora_pack_kernel<<<dim3(static_cast<unsigned>(count), kBlocksPerItem), kThreads, 0, stream>>>(
      items, write, first_bad);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
