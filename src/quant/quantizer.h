// The CPU quantizer: the bit-exact reference of the FP8 definition in fp8_scheme.h, multi-threaded.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/tensor.h"
#include "quant/fp8_scheme.h"

namespace fp8llm {

// Quantizes a 2-D weight W[N,K] (BF16, F16 or F32) into q (N*K bytes of e4m3) and scales (see
// weight_scale_shape). A NaN or Inf anywhere in W is an Error naming `tensor_name` and the element
// (quantizing it would silently poison the model).
void quantize_weight(Fp8Scheme scheme, const TensorView& w, uint8_t* q, float* scales,
                     std::string_view tensor_name,
                     Fp8ScaleRule rule = Fp8ScaleRule::MultiplyByReciprocal);

struct QuantizedTensor {
  HostTensor q;      // F8_E4M3 [N, K]
  HostTensor scale;  // F32, weight_scale_shape
};
QuantizedTensor quantize_weight(Fp8Scheme scheme, const TensorView& w, std::string_view tensor_name,
                                Fp8ScaleRule rule = Fp8ScaleRule::MultiplyByReciprocal);

// Dequantizes q[N,K] with its scales into fp32 out[N*K] (deq(q) = float32(q) * s).
void dequantize_weight(Fp8Scheme scheme, const uint8_t* q, const float* scales, int64_t n,
                       int64_t k, float* out);

// Quantizes activations x[T,K] (fp32) into q (T*K e4m3) and scales (activation_scale_shape).
// Rows of zeros get scale 1. Activations are not checked for NaN (a NaN propagates, as in the
// reference).
void quantize_activations(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, uint8_t* q,
                          float* scales, Fp8ScaleRule rule = Fp8ScaleRule::MultiplyByReciprocal);

}  // namespace fp8llm
