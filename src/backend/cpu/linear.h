// The CPU linear layers of the reference engine: y[T,N] = x[T,K] · W[N,K]^T (+ bias), fp32
// activations and fp32 accumulation, W stored as FP8 (e4m3 + scales) or in a checkpoint dtype.
// Multi-threaded; see gemm.h for the summation order.
#pragma once

#include <cstdint>

#include "quant/fp8_scheme.h"

namespace fp8llm::cpu {

// The FP8 dynamic-activation linear of fp8_scheme.h: x is quantized per token (row) or per token
// and 128-column group (block), then y[t,n] = sum_k deq(x)[t,k] * deq(W)[n,k] (+ bias[n]) with
// deq(q) = float32(q) * s. wq is W [n, k] as e4m3, wscale its weight_scale_shape scales. bias may
// be null. `rule` is the activation scale rule (fp8_scheme.h).
void linear_fp8(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, const uint8_t* wq,
                const float* wscale, int64_t n, const float* bias, float* y,
                Fp8ScaleRule rule = Fp8ScaleRule::MultiplyByReciprocal);

// The same with activations already quantized: xq [t, k] e4m3 and xscale
// (activation_scale_shape) from quantize_activations.
void linear_fp8_quantized(Fp8Scheme scheme, const uint8_t* xq, const float* xscale, int64_t t,
                          int64_t k, const uint8_t* wq, const float* wscale, int64_t n,
                          const float* bias, float* y);

// Unquantized weights (--quantization none, and lm_head), upcast exactly to fp32.
void linear_bf16(const float* x, int64_t t, int64_t k, const uint16_t* w_bf16, int64_t n,
                 const float* bias, float* y);
void linear_f16(const float* x, int64_t t, int64_t k, const uint16_t* w_f16, int64_t n,
                const float* bias, float* y);
void linear_f32(const float* x, int64_t t, int64_t k, const float* w, int64_t n, const float* bias,
                float* y);

}  // namespace fp8llm::cpu
