// Whether a tensor on the device holds a NaN or an infinity: checked before new weights are
// written (a live update changes nothing unless every tensor is good).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace fp8llm::cuda {

// Sets *flag to 1 (never back to 0) when any of the `count` values at `data` (BF16, F16 or F32) is
// a NaN or an infinity. Asynchronous on `stream`.
void launch_flag_nonfinite(DType dtype, const void* data, int64_t count, int* flag,
                           cudaStream_t stream);

}  // namespace fp8llm::cuda
