// FP8 quantization kernels on the device: weights from BF16 into their final FP8 buffers and
// scales, activations (per token, or per token per 128 columns) in the layouts the GEMMs read, and
// dequantization for checking. The numerics are the definition in quant/fp8_scheme.h, bit for bit,
// with its default scale rule amax * float32(1/448) for weights and activations (what the reference
// checkpoints and logits were made with); activations may ask for the true quotient amax / 448
// (Fp8ScaleRule::Divide, what the CPU-made single-layer fixture used).
//
// Scale layouts on the device:
//   weight, row:       F32 [N]
//   weight, block:     F32 [ceil(N/128)][scale_ld], scale_ld >= ceil(K/128). The checkpoint layout
//                      is scale_ld = ceil(K/128); cuBLASLt needs it rounded up to a multiple of 4
//                      (device_block_scale_ld), the padding entries unused.
//   activation, row:   F32 [T]
//   activation, block: F32 [ceil(K/128)][T], the token index fastest (what cuBLASLt's 128-element
//                      scaling expects for the B operand).
// All launches are asynchronous on `stream`; every pointer is device memory.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "quant/fp8_scheme.h"

namespace fp8llm::cuda {

inline int64_t fp8_block_count(int64_t n) {
  return (n + kFp8BlockSize - 1) / kFp8BlockSize;
}
// Leading dimension of a block-scaled weight's scales as the GEMMs want it.
inline int64_t device_block_scale_ld(int64_t k) {
  return (fp8_block_count(k) + 3) / 4 * 4;
}
// Floats to allocate for a weight's scales with the given leading dimension.
int64_t weight_scale_elems(Fp8Scheme scheme, int64_t n, int64_t k, int64_t scale_ld);
// Floats of the scales of activations x[T, K].
int64_t activation_scale_elems(Fp8Scheme scheme, int64_t t, int64_t k);

// W[N,K] bf16 -> q[N,K] e4m3 + scales. Sets *nonfinite to 1 (never back to 0) when W holds a NaN
// or an infinity; those elements' bytes are then meaningless. Row: one block per row; block: one
// block per 128x128 tile.
void launch_quantize_weight(Fp8Scheme scheme, const __nv_bfloat16* w, int64_t n, int64_t k,
                            uint8_t* q, float* scales, int64_t scale_ld, int* nonfinite,
                            cudaStream_t stream);

// x[T,K] -> q[T,K] e4m3 + scales (layouts above). Zero rows/groups get scale 1; NaN propagates.
void launch_quantize_activations(Fp8Scheme scheme, const __nv_bfloat16* x, int64_t t, int64_t k,
                                 uint8_t* q, float* scales, cudaStream_t stream,
                                 Fp8ScaleRule rule = Fp8ScaleRule::MultiplyByReciprocal);
void launch_quantize_activations(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, uint8_t* q,
                                 float* scales, cudaStream_t stream,
                                 Fp8ScaleRule rule = Fp8ScaleRule::MultiplyByReciprocal);

// deq(q) = float32(q) * s, into fp32 out[rows * K].
void launch_dequantize_weight(Fp8Scheme scheme, const uint8_t* q, const float* scales,
                              int64_t scale_ld, int64_t n, int64_t k, float* out,
                              cudaStream_t stream);
void launch_dequantize_activations(Fp8Scheme scheme, const uint8_t* q, const float* scales,
                                   int64_t t, int64_t k, float* out, cudaStream_t stream);

// The device's float -> e4m3 encoder (round to nearest even, saturating) on `count` values, so
// that it can be checked against the host encoder.
void launch_float_to_e4m3(const float* in, uint8_t* out, int64_t count, cudaStream_t stream);

}  // namespace fp8llm::cuda
