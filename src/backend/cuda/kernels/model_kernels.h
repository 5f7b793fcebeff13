// The forward pass's kernels besides the GEMMs, on fp32 activations (weights bf16). Each computes
// what the CPU backend computes, operation for operation in fp32 (rounding points noted per
// kernel), so that the two backends agree to within fp32 rounding: activations are quantized to
// FP8 before every projection, and any coarser rounding upstream flips FP8 codes (docs/FP8.md).
// All launches are asynchronous on `stream`; every pointer is device memory.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace fp8llm::cuda {

// out[t, :] = float(table[ids[t], :]) for t < tokens (ids checked by the caller).
void launch_embed(const __nv_bfloat16* table, const int32_t* ids, int64_t tokens, int64_t hidden,
                  float* out, cudaStream_t stream);

// RMSNorm of `rows` rows of `dim` (out may be x): y = w * (x * inv_rms), inv_rms =
// float(1 / sqrt(double(float(sum of squares / dim) + eps))), the squares summed in double
// (transformers' LlamaRMSNorm in fp32, as the CPU backend computes it).
void launch_rms_norm(const float* x, int64_t rows, int64_t dim, const __nv_bfloat16* w, float eps,
                     float* out, cudaStream_t stream);
// x += residual, then out = RMSNorm(x) as above (the residual add and the norm after it in one
// pass; out may not alias x). dim <= 16384 for both.
void launch_add_rms_norm(float* x, const float* residual, int64_t rows, int64_t dim,
                         const __nv_bfloat16* w, float eps, float* out, cudaStream_t stream);

// Rotary embedding in place on x [tokens, heads, head_dim] (half-split layout): angle = fp32
// (inv_freq[i] * position), cos/sin of it computed in double as the CPU backend does, each product
// rounded to fp32.
void launch_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                 const int64_t* positions, const float* inv_freq, cudaStream_t stream);

// out[i, :] = in[rows[i], :] for i < count (rows on the device).
void launch_gather_rows(const float* in, int64_t cols, const int32_t* rows, int64_t count,
                        float* out, cudaStream_t stream);

// out = (gate / (1 + exp(-gate))) * up (out may be gate).
void launch_silu_mul(const float* gate, const float* up, int64_t count, float* out,
                     cudaStream_t stream);

// x = x + y.
void launch_add(float* x, const float* y, int64_t count, cudaStream_t stream);

// F16 or F32 source values -> bf16 (round to nearest even); BF16 is copied.
void launch_to_bf16(DType dtype, const void* in, int64_t count, __nv_bfloat16* out,
                    cudaStream_t stream);

// A pre-quantized checkpoint's weight scales (F32, BF16 or F16; `in_count` == rows * cols, or 1
// for one per-tensor scale) -> fp32 out[rows][ld], columns cols.. of each row left as they are.
void launch_scales_to_f32(DType dtype, const void* in, int64_t in_count, int64_t rows, int64_t cols,
                          int64_t ld, float* out, cudaStream_t stream);

}  // namespace fp8llm::cuda
