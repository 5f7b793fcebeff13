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

// Where a weight shard sits in its projection (tensor parallelism, model/shard_plan.h): W [n, k]
// is rows [row, row + n) and columns [col, col + k) of a projection of full_k input features.
// Its block scales are those of the full weight's 128x128 tiles it touches
// (quant/region_quantizer.h), and its input's scales are those of whole rows of full_k columns.
struct WeightShard {
  int64_t row = 0;
  int64_t col = 0;
  int64_t full_k = 0;
};

// linear_fp8 over a shard of whole input rows (col 0, full_k == k): q, k, v, gate, up.
void linear_fp8_shard(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, const uint8_t* wq,
                      const float* wscale, int64_t n, const WeightShard& shard, const float* bias,
                      float* y);
// linear_fp8_quantized over a shard: xq [t, k] holds the input's columns [shard.col, shard.col +
// k), xscale the scales of its whole rows, [activation_scale_shape(scheme, t, shard.full_k)].
void linear_fp8_quantized_shard(Fp8Scheme scheme, const uint8_t* xq, const float* xscale, int64_t t,
                                int64_t k, const uint8_t* wq, const float* wscale, int64_t n,
                                const WeightShard& shard, const float* bias, float* y);

// Unquantized weights (--quantization none, and lm_head), upcast exactly to fp32.
void linear_bf16(const float* x, int64_t t, int64_t k, const uint16_t* w_bf16, int64_t n,
                 const float* bias, float* y);
void linear_f16(const float* x, int64_t t, int64_t k, const uint16_t* w_f16, int64_t n,
                const float* bias, float* y);
void linear_f32(const float* x, int64_t t, int64_t k, const float* w, int64_t n, const float* bias,
                float* y);

}  // namespace fp8llm::cpu
