#include <stdexcept>

#include "backend/cuda/kernels/nonfinite.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kThreads = 256;

// An all-ones exponent is an infinity or a NaN; `Bits` holds one element, `kExponent` its mask.
template <typename Bits, Bits kExponent>
__global__ void __launch_bounds__(kThreads)
    flag_nonfinite_kernel(const Bits* __restrict__ data, int64_t count, int* __restrict__ flag) {
  bool bad = false;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += stride) {
    bad = bad || (data[i] & kExponent) == kExponent;
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) atomicExch(flag, 1);
}

unsigned grid_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 4096 ? blocks : 4096);
}

}  // namespace

void launch_flag_nonfinite(DType dtype, const void* data, int64_t count, int* flag,
                           cudaStream_t stream) {
  if (count <= 0) return;
  switch (dtype) {
    case DType::BF16:
      flag_nonfinite_kernel<uint16_t, 0x7F80><<<grid_for(count), kThreads, 0, stream>>>(
          static_cast<const uint16_t*>(data), count, flag);
      break;
    case DType::F16:
      flag_nonfinite_kernel<uint16_t, 0x7C00><<<grid_for(count), kThreads, 0, stream>>>(
          static_cast<const uint16_t*>(data), count, flag);
      break;
    case DType::F32:
      flag_nonfinite_kernel<uint32_t, 0x7F800000u><<<grid_for(count), kThreads, 0, stream>>>(
          static_cast<const uint32_t*>(data), count, flag);
      break;
    default:
      throw std::invalid_argument("launch_flag_nonfinite: values must be BF16, F16 or F32");
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
