// The CPU backend's weights by checkpoint name (for the state dict and live updates). They are held
// as loaded, so FP8 projections are the codes and F32 scales in the checkpoint layout already, and
// every other tensor keeps its checkpoint dtype. Writes go into those buffers in place (none is
// reallocated) and then refresh the backend's fp32 copies of the norms and biases.
#pragma once

#include "backend/cpu/cpu_backend.h"
#include "model/host_weights.h"
#include "model/weight_store.h"

namespace fp8llm {

class CpuWeightStore final : public WeightStore {
 public:
  explicit CpuWeightStore(CpuBackend& backend) : backend_(backend) {}
  HeldWeight held_weight(const WeightSpec& spec) const override;
  void read_weight(const WeightSpec& spec, std::span<std::byte> values,
                   std::span<float> scales) const override;
  HeldMemory memory(const WeightSpec& spec) override;
  void write(std::span<const WeightWrite> writes) override;

 private:
  CpuBackend& backend_;
};

}  // namespace fp8llm
