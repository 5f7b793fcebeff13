// The CUDA backend's weights by checkpoint name (for the state dict and live updates): each tensor
// copied from its slot of the weight arena to the host, one at a time. FP8 projections are their
// e4m3 codes plus their fp32 scales; block scales live on the device with rows padded to a
// multiple of 4 for cuBLASLt, and are copied without the padding (the checkpoint layout).
// Everything else is held, and returned, as bf16. Writes go into the same slots
// (loading/weight_writer.h); sleep level 2 moves the whole arena to pinned host memory and back.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/loading/device_weights.h"
#include "model/weight_store.h"

namespace fp8llm::cuda {

class CudaWeightStore final : public WeightStore {
 public:
  CudaWeightStore(DeviceWeights& weights, cudaStream_t stream)
      : weights_(weights), stream_(stream) {}
  HeldWeight held_weight(const WeightSpec& spec) const override;
  void read_weight(const WeightSpec& spec, std::span<std::byte> values,
                   std::span<float> scales) const override;
  HeldMemory memory(const WeightSpec& spec) override;
  bool reads_device_memory() const override { return true; }
  void check_device_sources(std::span<const WeightWrite> writes) const override;
  void write(std::span<const WeightWrite> writes) override;
  void offload() override;
  void restore() override;

 private:
  DeviceWeights& weights_;
  cudaStream_t stream_;  // where the weights are written
};

}  // namespace fp8llm::cuda
