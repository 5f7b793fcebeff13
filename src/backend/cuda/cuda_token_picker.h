// Picks tokens where the logits are (model/token_picker.h): greedy rows in two launches (pieces of
// every row, then their combination: kernels/token_pick.h), draws at a temperature in two, filtered
// draws (top-k, top-p, min-p) one launch each; then one copy of the (id, log-probability) pairs
// back.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/pinned_buffer.h"
#include "model/token_picker.h"

namespace fp8llm::cuda {

class CudaTokenPicker final : public TokenPicker {
 public:
  explicit CudaTokenPicker(cudaStream_t stream) : stream_(stream) {}
  void pick(Act logits, std::span<const PickSpec> specs, std::span<TopToken> out) override;

 private:
  void reserve(size_t picks);
  void reserve_scratch(size_t bytes);

  cudaStream_t stream_;
  size_t capacity_ = 0;
  // Per pick: row (int32), temperature (float), uniform (double) in; id (int32), logprob (float)
  // out. One buffer each way, the same layout on both sides.
  DeviceBuffer device_;
  PinnedBuffer host_;
  // The pieces' partial results between a pick's two launches.
  DeviceBuffer scratch_;
};

}  // namespace fp8llm::cuda
