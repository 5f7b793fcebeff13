// Quantizes BF16 weights that are already on the device into their final FP8 buffers, and turns a
// NaN or infinity in a weight into an fp8llm::Error naming the tensor (quantizing it would
// silently poison the model).
//
// Loading enqueues every weight without waiting (each gets its own non-finite flag on the device)
// and checks all flags once at the end: waiting after each tensor would keep the copy of the next
// one from overlapping this one's quantization.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/pinned_buffer.h"
#include "quant/fp8_scheme.h"

namespace fp8llm::cuda {

class DeviceWeightQuantizer {
 public:
  // W[N,K] -> q[N,K] + scales (layouts in fp8_quant.h; scale_ld used in block mode), enqueued on
  // `stream`. W must stay valid until the stream has run it.
  void enqueue(Fp8Scheme scheme, const __nv_bfloat16* w, int64_t n, int64_t k, uint8_t* q,
               float* scales, int64_t scale_ld, std::string_view tensor_name, cudaStream_t stream);
  // Waits for `stream`, then throws naming the first enqueued weight that held a non-finite value.
  void check(cudaStream_t stream);
  // enqueue + check.
  void quantize(Fp8Scheme scheme, const __nv_bfloat16* w, int64_t n, int64_t k, uint8_t* q,
                float* scales, int64_t scale_ld, std::string_view tensor_name, cudaStream_t stream);

 private:
  static constexpr size_t kFlagsPerBlock = 256;
  std::vector<DeviceBuffer> flag_blocks_;  // kFlagsPerBlock ints each, zeroed on the stream
  std::vector<std::string> names_;         // the tensor of each flag, in order
};

}  // namespace fp8llm::cuda
