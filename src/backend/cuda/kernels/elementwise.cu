#include "backend/cuda/kernels/elementwise.h"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
}

__device__ __forceinline__ float to_float(float v) {
  return v;
}
__device__ __forceinline__ float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ void store(float* p, float v) {
  *p = v;
}
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}

template <typename T>
__global__ void add_bias_kernel(T* __restrict__ y, const __nv_bfloat16* __restrict__ bias,
                                int64_t m, int64_t n) {
  const int64_t total = m * n;
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * kThreads) {
    store(y + i, to_float(y[i]) + __bfloat162float(bias[i % n]));
  }
}

// splitmix64 finalizer: a well-mixed 64-bit hash of the index.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__global__ void fill_uniform_bf16_kernel(__nv_bfloat16* __restrict__ out, int64_t count,
                                         uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * kThreads) {
    const uint64_t h = mix64(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i));
    const float u = static_cast<float>(h >> 40) * 0x1p-24f;  // [0, 1)
    out[i] = __float2bfloat16_rn((2.0f * u - 1.0f) * scale);
  }
}

template <typename Bits>
__global__ void flag_all_ones_kernel(const Bits* __restrict__ values, int64_t count, Bits mask,
                                     int* __restrict__ flag) {
  bool bad = false;
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * kThreads) {
    bad = bad || (values[i] & mask) == mask;
  }
  if (__syncthreads_or(bad) && threadIdx.x == 0) atomicExch(flag, 1);
}

// One float4 a thread: column group c of row r goes to the part whose columns hold it.
__global__ void split_columns_kernel(SplitColumnsArgs a, int64_t groups_per_row) {
  const int64_t total = a.rows * groups_per_row;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / groups_per_row;
    int64_t c = i % groups_per_row;
    const float4 v = reinterpret_cast<const float4*>(a.src)[i];
    for (int p = 0; p < a.count; ++p) {
      const int64_t groups = a.parts[p].width / 4;
      if (c < groups) {
        reinterpret_cast<float4*>(a.parts[p].y)[r * groups + c] = v;
        break;
      }
      c -= groups;
    }
  }
}

}  // namespace

void launch_split_columns(const SplitColumnsArgs& args, cudaStream_t stream) {
  int64_t width = 0;
  for (int p = 0; p < args.count; ++p) width += args.parts[p].width;
  if (args.rows <= 0 || width <= 0) return;
  const int64_t groups_per_row = width / 4;
  split_columns_kernel<<<grid_for(args.rows * groups_per_row), kThreads, 0, stream>>>(
      args, groups_per_row);
  CUDA_CHECK_LAUNCH();
}

void launch_flag_nonfinite(const void* values, int64_t count, bool e4m3, int* flag,
                           cudaStream_t stream) {
  if (count <= 0) return;
  if (e4m3) {
    flag_all_ones_kernel<uint8_t><<<grid_for(count), kThreads, 0, stream>>>(
        static_cast<const uint8_t*>(values), count, uint8_t{0x7F}, flag);
  } else {
    flag_all_ones_kernel<uint16_t><<<grid_for(count), kThreads, 0, stream>>>(
        static_cast<const uint16_t*>(values), count, uint16_t{0x7F80}, flag);
  }
  CUDA_CHECK_LAUNCH();
}

void launch_add_bias(__nv_bfloat16* y, const __nv_bfloat16* bias, int64_t m, int64_t n,
                     cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  add_bias_kernel<<<grid_for(m * n), kThreads, 0, stream>>>(y, bias, m, n);
  CUDA_CHECK_LAUNCH();
}

void launch_add_bias(float* y, const __nv_bfloat16* bias, int64_t m, int64_t n,
                     cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  add_bias_kernel<<<grid_for(m * n), kThreads, 0, stream>>>(y, bias, m, n);
  CUDA_CHECK_LAUNCH();
}

void launch_fill_uniform_bf16(__nv_bfloat16* out, int64_t count, uint64_t seed, float scale,
                              cudaStream_t stream) {
  if (count <= 0) return;
  fill_uniform_bf16_kernel<<<grid_for(count), kThreads, 0, stream>>>(out, count, seed, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
