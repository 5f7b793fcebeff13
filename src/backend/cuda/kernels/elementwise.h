// Small elementwise kernels the GEMM paths and the benchmarks need.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fp8llm::cuda {

// y[m, n] = bf16(float(y[m, n]) + float(bias[n])) for a row-major y[M, N].
void launch_add_bias(__nv_bfloat16* y, const __nv_bfloat16* bias, int64_t m, int64_t n,
                     cudaStream_t stream);
// y[m, n] += float(bias[n]) for a row-major fp32 y[M, N].
void launch_add_bias(float* y, const __nv_bfloat16* bias, int64_t m, int64_t n,
                     cudaStream_t stream);

// The columns of src[rows][sum of widths] (fp32, row-major) copied out to parts[i].y[rows][width_i]
// in order: a joined GEMM's output handed to its projections (Fp8Linear::forward_group). Widths
// are multiples of 4 and the outputs 16-byte aligned (the kernel moves four floats at a time).
inline constexpr int kSplitColumnsMaxParts = 4;
struct SplitColumnsArgs {
  const float* src = nullptr;
  int64_t rows = 0;
  int count = 0;
  struct Part {
    float* y = nullptr;
    int64_t width = 0;
  } parts[kSplitColumnsMaxParts];
};
void launch_split_columns(const SplitColumnsArgs& args, cudaStream_t stream);

// Fills out[count] with bf16 values uniform in [-scale, scale) from a counter-based hash of
// (seed, index): reproducible, and fast enough for benchmark-sized tensors.
void launch_fill_uniform_bf16(__nv_bfloat16* out, int64_t count, uint64_t seed, float scale,
                              cudaStream_t stream);

// Sets *flag to 1 (never back to 0) when values[count] holds a non-finite element: bf16 with an
// all-ones exponent (infinity or NaN), or, with `e4m3`, the e4m3fn NaN code (0x7f / 0xff).
// Enqueued without waiting, so that a load checks all its tensors with one copy at the end.
void launch_flag_nonfinite(const void* values, int64_t count, bool e4m3, int* flag,
                           cudaStream_t stream);

}  // namespace fp8llm::cuda
