// The one rule for the numbers a checkpoint holds, applied wherever its tensors are read (a load
// on either backend, inspect, quantize; export writes what a load accepted): every weight is
// finite (no NaN or infinity in BF16, F16 or F32; no NaN code, 0x7f or 0xff, in F8_E4M3, which has
// no infinity), and every scale is finite and positive. A violation is an Error naming the tensor
// and the first bad element: a NaN anywhere in the model makes every logit NaN, and a zero scale
// silently zeroes a projection.
//
// Projections quantized while they load are checked by the quantizer itself (quant/quantizer.h),
// as it reads them.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/tensor.h"
#include "loader/load_plan.h"

namespace fp8llm {

// Fails if `values` (BF16, F16, F32 or F8_E4M3) holds a non-finite element.
void check_finite(const TensorView& values, std::string_view tensor_name);

// Fails unless every element of `scales` (F32, BF16 or F16) is finite and positive.
void check_scales(const TensorView& scales, std::string_view tensor_name);

// The rule for one planned tensor as it streams in (`source` holds its checkpoint bytes): a
// scale is checked as a scale, a tensor kept as stored (or pre-quantized) for finite values, and a
// tensor the plan quantizes is left to the quantizer.
void check_planned_tensor(const PlannedTensor& tensor, const TensorView& source);

}  // namespace fp8llm
