// Live weight updates on the device: new values written into the weight arena's existing slots,
// so no pointer moves and recorded CUDA graphs stay valid. An FP8 projection goes through the
// load's quantizer (F16/F32 converted to bf16 first, as a load does); anything else is converted
// to bf16 in place. Sources already on the device are read where they are (a BF16 projection is
// quantized straight from it); sources in host memory are copied in pieces through one staging
// buffer, so an update takes at most kWeightStagingBytes of device memory beyond the arena (a
// projection needs whole rows of 128x128 tiles at once: one band of an unusually wide projection
// may need more, never more than the tensor).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "model/weight_store.h"
#include "quant/fp8_scheme.h"

namespace fp8llm::cuda {

inline constexpr size_t kWeightStagingBytes = 64ull << 20;

// Where one write goes.
struct SlotWrite {
  const WeightWrite* write = nullptr;
  void* values = nullptr;  // bf16 values, or the e4m3 codes of an FP8 projection
  int64_t rows = 0;
  int64_t cols = 0;
  std::optional<Fp8Scheme> scheme;  // set: an FP8 projection
  float* scales = nullptr;
  int64_t scale_ld = 0;
};

// Writes every slot on `stream` and waits for it. The sources were checked (shapes, dtypes,
// finite values); a non-finite value found anyway is an Error naming the tensor.
void write_slots(std::span<const SlotWrite> writes, cudaStream_t stream);

// An Error naming the first write (all of them in device memory) holding a NaN or an infinity.
void check_device_finite(std::span<const WeightWrite> writes, cudaStream_t stream);

}  // namespace fp8llm::cuda
