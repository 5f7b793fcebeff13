// LoRA adapters on the device: one region per slot, every projection of every layer at the same
// offset in each (A [max_rank, in] and B [out, max_rank], bf16, zero beyond an adapter's rank),
// allocated once by reserve() so a recorded pass keeps the addresses; set() rewrites a slot in
// place.
#pragma once

#include <cuda_runtime.h>

#include <map>
#include <utility>

#include "backend/cuda/runtime/device_buffer.h"
#include "formats/hf_config.h"
#include "model/backend.h"
#include "model/lora_weights.h"

namespace fp8llm::cuda {

class CudaLora {
 public:
  void reserve(const ModelConfig& config, int slots, int64_t max_rank, int64_t max_tokens);
  void set(int slot, const LoraAdapter* adapter, cudaStream_t stream);
  void apply(const float* x, int64_t in, int64_t layer, LinearKind kind, const BatchView& batch,
             float* y, int64_t out, cudaStream_t stream) const;

 private:
  struct Offsets {
    size_t a = 0, b = 0;  // elements from the slot's start
    ProjectionShape shape;
  };
  int slots_ = 0;
  int64_t max_rank_ = 0;
  size_t slot_elements_ = 0;
  std::map<std::pair<int64_t, LinearKind>, Offsets> offsets_;
  DeviceBuffer factors_;  // bf16, slots_ * slot_elements_
  DeviceBuffer scales_;   // float per slot
  DeviceBuffer u_;        // float [max_tokens, max_rank]
};

}  // namespace fp8llm::cuda
