// Quantizing part of a tensor exactly as quantizing the whole would (tensor parallelism: a rank
// holds a rectangle of a weight, or some columns of an activation). A part gets the whole
// tensor's codes and scales there, bit for bit, because every scale stays its whole group's: a
// weight row (row scheme) or 128x128 tile (block scheme) that a region cuts is scaled by the amax
// of all of it, and an activation row or 1x128 group split between ranks by the largest of the
// ranks' amaxes (docs/FP8.md, "Tensor parallelism").
#pragma once

#include <cstdint>
#include <string_view>

#include "core/tensor.h"
#include "quant/fp8_scheme.h"

namespace fp8llm {

// The scales of a weight region, as a rectangle of the full weight's scales (weight_scale_shape):
// row scheme, the rows it holds (each scale its whole row's); block scheme, the 128x128 tiles it
// touches.
TensorSlice region_scale_grid(Fp8Scheme scheme, const TensorSlice& region);
// That rectangle's shape: [rows, 1] or [tile rows, tile columns].
Shape region_scale_shape(Fp8Scheme scheme, const TensorSlice& region);

// Quantizes `region` of the weight `w` [N, K] (BF16, F16 or F32) into q [rows, cols] (e4m3) and
// scales (region_scale_shape). It reads the whole rows (row) or tiles (block) the region touches
// and nothing else; a NaN or Inf there is an Error naming `tensor_name` and the element.
void quantize_weight_region(Fp8Scheme scheme, const TensorView& w, const TensorSlice& region,
                            uint8_t* q, float* scales, std::string_view tensor_name,
                            Fp8ScaleRule rule = Fp8ScaleRule::MultiplyByReciprocal);

// x [t, k] holds columns [col0, col0 + k) of activations of `full_k` columns. Writes amax
// [activation_scale_shape(scheme, t, full_k)]: each scale group's amax over the columns held, as
// the bit pattern of |x| (Collective::all_reduce_max takes the largest over ranks exactly); 0 for
// the groups that none of them is in.
void activation_amax_bits(Fp8Scheme scheme, const float* x, int64_t t, int64_t k, int64_t col0,
                          int64_t full_k, uint32_t* amax);

// Quantizes those columns with the scales of `amax`, the largest of every rank's
// activation_amax_bits: q [t, k], and the scales of all of each row's groups [activation_scale_
// shape(scheme, t, full_k)]. They equal quantize_activations over the full rows, there.
void quantize_activation_columns(Fp8Scheme scheme, const float* x, int64_t t, int64_t k,
                                 int64_t col0, int64_t full_k, const uint32_t* amax, uint8_t* q,
                                 float* scales,
                                 Fp8ScaleRule rule = Fp8ScaleRule::MultiplyByReciprocal);

}  // namespace fp8llm
