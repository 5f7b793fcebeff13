// Kernels of the forward pass besides the GEMMs (model_kernels.h).
#include <cuda_fp16.h>

#include <type_traits>

#include <cmath>
#include <stdexcept>

#include "backend/cuda/kernels/model_kernels.h"
#include "backend/cuda/kernels/row_ops.cuh"
#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t count, int threads) {
  return static_cast<unsigned>((count + threads - 1) / threads);
}

__global__ void embed_kernel(const __nv_bfloat16* __restrict__ table,
                             const int32_t* __restrict__ ids, int64_t hidden,
                             float* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const __nv_bfloat16* src = table + static_cast<int64_t>(ids[t]) * hidden;
  float* dst = out + t * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += kThreads) dst[i] = __bfloat162float(src[i]);
}

// One block per row, each thread holding up to kPer elements of it in registers (dim <=
// kBlockThreads * kPer), so that the row is read once and all its loads are in flight together:
// detail::rms_norm_row, which the fused form that also quantizes shares (fused_quant.cu).
template <int kBlockThreads, int kPer>
__global__ void __launch_bounds__(kBlockThreads)
    rms_norm_kernel(float* x, const float* __restrict__ residual, int64_t dim,
                    const __nv_bfloat16* __restrict__ w, float eps, float* out) {
  float y[kPer];
  detail::rms_norm_row<kBlockThreads, kPer>(x, residual, blockIdx.x, dim, w, eps, out, y);
}

// rms_norm_kernel in the vector layout (detail::rms_norm_row_vec), where norm_vec_fits: the fused
// form takes the same layout under the same condition, so the two give the same bits.
template <int kBlockThreads, int kVec>
__global__ void __launch_bounds__(kBlockThreads)
    rms_norm_vec_kernel(float* x, const float* __restrict__ residual, int64_t dim,
                        const __nv_bfloat16* __restrict__ w, float eps, float* out) {
  float4 y[kVec];
  detail::rms_norm_row_vec<kBlockThreads, kVec>(x, residual, blockIdx.x, dim, w, eps, out, y);
}

// grid (heads, tokens); thread i < head_dim/2 rotates the pair (i, i + half).
__global__ void rope_kernel(float* x, int64_t heads, int64_t head_dim,
                            const int64_t* __restrict__ positions,
                            const float* __restrict__ inv_freq) {
  const int64_t h = blockIdx.x;
  const int64_t t = blockIdx.y;
  const int64_t half = head_dim / 2;
  const float pos = static_cast<float>(positions[t]);
  float* v = x + (t * heads + h) * head_dim;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double angle = static_cast<double>(__fmul_rn(inv_freq[i], pos));
    const float c = static_cast<float>(cos(angle));
    const float s = static_cast<float>(sin(angle));
    const float a = v[i];
    const float b = v[i + half];
    v[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    v[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  }
}

// grid (rows): out[i] = in[rows[i]].
__global__ void gather_rows_kernel(const float* __restrict__ in, int64_t cols,
                                   const int32_t* __restrict__ rows, float* __restrict__ out) {
  const float* src = in + static_cast<int64_t>(rows[blockIdx.x]) * cols;
  float* dst = out + static_cast<int64_t>(blockIdx.x) * cols;
  for (int64_t i = threadIdx.x; i < cols; i += kThreads) dst[i] = src[i];
}

__global__ void silu_mul_kernel(const float* gate, const float* up, int64_t count, float* out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * kThreads) {
    out[i] = detail::silu_times(gate[i], up[i]);
  }
}

__global__ void add_kernel(float* x, const float* __restrict__ y, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * kThreads) {
    x[i] = __fadd_rn(x[i], y[i]);
  }
}

template <typename T>
__global__ void to_bf16_kernel(const T* __restrict__ in, int64_t count,
                               __nv_bfloat16* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * kThreads) {
    if constexpr (std::is_same_v<T, __half>) {
      out[i] = __float2bfloat16_rn(__half2float(in[i]));
    } else {
      out[i] = __float2bfloat16_rn(in[i]);
    }
  }
}

template <typename T>
__global__ void scales_to_f32_kernel(const T* __restrict__ in, bool broadcast, int64_t rows,
                                     int64_t cols, int64_t ld, float* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < rows * cols;
       i += int64_t{gridDim.x} * kThreads) {
    const T v = in[broadcast ? 0 : i];
    float f;
    if constexpr (std::is_same_v<T, float>) {
      f = v;
    } else if constexpr (std::is_same_v<T, __half>) {
      f = __half2float(v);
    } else {
      f = __bfloat162float(v);
    }
    out[(i / cols) * ld + i % cols] = f;
  }
}

// Grid-stride kernels: enough blocks to fill the GPU, never more than the work needs.
unsigned elementwise_blocks(int64_t count) {
  const unsigned need = blocks_for(count, kThreads);
  return need < 4096 ? need : 4096;
}

}  // namespace

void launch_embed(const __nv_bfloat16* table, const int32_t* ids, int64_t tokens, int64_t hidden,
                  float* out, cudaStream_t stream) {
  if (tokens <= 0) return;
  embed_kernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(table, ids, hidden, out);
  CUDA_CHECK_LAUNCH();
}

namespace {

template <int kBlockThreads, int kPer>
void launch_norm(float* x, const float* residual, int64_t rows, int64_t dim, const __nv_bfloat16* w,
                 float eps, float* out, cudaStream_t stream) {
  rms_norm_kernel<kBlockThreads, kPer>
      <<<static_cast<unsigned>(rows), kBlockThreads, 0, stream>>>(x, residual, dim, w, eps, out);
}

void launch_norm_any(float* x, const float* residual, int64_t rows, int64_t dim,
                     const __nv_bfloat16* w, float eps, float* out, cudaStream_t stream) {
  if (rows <= 0) return;
  if (detail::norm_vec_fits(dim, x, residual, w, out, nullptr)) {
    detail::by_vec_width(dim, [&]<int kThreads, int kVec>() {
      rms_norm_vec_kernel<kThreads, kVec>
          <<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, residual, dim, w, eps, out);
    });
    CUDA_CHECK_LAUNCH();
    return;
  }
  if (dim <= 256) {
    launch_norm<128, 2>(x, residual, rows, dim, w, eps, out, stream);
  } else if (dim <= 4096) {
    launch_norm<512, 8>(x, residual, rows, dim, w, eps, out, stream);
  } else if (dim <= 16384) {
    launch_norm<1024, 16>(x, residual, rows, dim, w, eps, out, stream);
  } else {
    throw std::invalid_argument("launch_rms_norm: rows longer than 16384 are not supported");
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_rms_norm(const float* x, int64_t rows, int64_t dim, const __nv_bfloat16* w, float eps,
                     float* out, cudaStream_t stream) {
  // Without a residual the kernel does not write x.
  launch_norm_any(const_cast<float*>(x), nullptr, rows, dim, w, eps, out, stream);
}

void launch_add_rms_norm(float* x, const float* residual, int64_t rows, int64_t dim,
                         const __nv_bfloat16* w, float eps, float* out, cudaStream_t stream) {
  launch_norm_any(x, residual, rows, dim, w, eps, out, stream);
}

void launch_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                 const int64_t* positions, const float* inv_freq, cudaStream_t stream) {
  if (tokens <= 0) return;
  const int64_t half = head_dim / 2;
  const int threads = half >= 128 ? 128 : static_cast<int>((half + 31) / 32 * 32);
  rope_kernel<<<dim3(static_cast<unsigned>(heads), static_cast<unsigned>(tokens)), threads, 0,
                stream>>>(x, heads, head_dim, positions, inv_freq);
  CUDA_CHECK_LAUNCH();
}

void launch_gather_rows(const float* in, int64_t cols, const int32_t* rows, int64_t count,
                        float* out, cudaStream_t stream) {
  if (count <= 0) return;
  gather_rows_kernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(in, cols, rows, out);
  CUDA_CHECK_LAUNCH();
}

void launch_silu_mul(const float* gate, const float* up, int64_t count, float* out,
                     cudaStream_t stream) {
  if (count <= 0) return;
  silu_mul_kernel<<<elementwise_blocks(count), kThreads, 0, stream>>>(gate, up, count, out);
  CUDA_CHECK_LAUNCH();
}

void launch_add(float* x, const float* y, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  add_kernel<<<elementwise_blocks(count), kThreads, 0, stream>>>(x, y, count);
  CUDA_CHECK_LAUNCH();
}

void launch_to_bf16(DType dtype, const void* in, int64_t count, __nv_bfloat16* out,
                    cudaStream_t stream) {
  if (count <= 0) return;
  switch (dtype) {
    case DType::BF16:
      CUDA_CHECK(cudaMemcpyAsync(out, in, static_cast<size_t>(count) * 2, cudaMemcpyDeviceToDevice,
                                 stream));
      return;
    case DType::F16:
      to_bf16_kernel<<<elementwise_blocks(count), kThreads, 0, stream>>>(
          static_cast<const __half*>(in), count, out);
      break;
    case DType::F32:
      to_bf16_kernel<<<elementwise_blocks(count), kThreads, 0, stream>>>(
          static_cast<const float*>(in), count, out);
      break;
    default:
      throw std::invalid_argument("launch_to_bf16: source must be BF16, F16 or F32");
  }
  CUDA_CHECK_LAUNCH();
}

void launch_scales_to_f32(DType dtype, const void* in, int64_t in_count, int64_t rows, int64_t cols,
                          int64_t ld, float* out, cudaStream_t stream) {
  if (rows * cols <= 0) return;
  if (in_count != 1 && in_count != rows * cols)
    throw std::invalid_argument("launch_scales_to_f32: source size does not match the scales");
  const bool broadcast = in_count == 1;
  const unsigned blocks = elementwise_blocks(rows * cols);
  switch (dtype) {
    case DType::F32:
      scales_to_f32_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(in),
                                                            broadcast, rows, cols, ld, out);
      break;
    case DType::F16:
      scales_to_f32_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __half*>(in),
                                                            broadcast, rows, cols, ld, out);
      break;
    case DType::BF16:
      scales_to_f32_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(in),
                                                            broadcast, rows, cols, ld, out);
      break;
    default:
      throw std::invalid_argument("launch_scales_to_f32: scales must be F32, BF16 or F16");
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace fp8llm::cuda
