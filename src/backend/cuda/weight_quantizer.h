// Quantizes BF16 weights that are already on the device into their final FP8 buffers, and turns a
// NaN or infinity in a weight into an fp8llm::Error naming the tensor (quantizing it would
// silently poison the model).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string_view>

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/pinned_buffer.h"
#include "quant/fp8_scheme.h"

namespace fp8llm::cuda {

class DeviceWeightQuantizer {
 public:
  DeviceWeightQuantizer();

  // W[N,K] -> q[N,K] + scales (layouts in fp8_quant.h; scale_ld used in block mode). Waits for
  // `stream` to finish, then throws if W held a non-finite value.
  void quantize(Fp8Scheme scheme, const __nv_bfloat16* w, int64_t n, int64_t k, uint8_t* q,
                float* scales, int64_t scale_ld, std::string_view tensor_name, cudaStream_t stream);

 private:
  DeviceBuffer flag_;
  PinnedBuffer host_flag_;
};

}  // namespace fp8llm::cuda
