// The CPU backend's weights by checkpoint name (for the state dict). They are held as loaded, so
// FP8 projections are the codes and F32 scales in the checkpoint layout already, and every other
// tensor keeps its checkpoint dtype.
#pragma once

#include "model/host_weights.h"
#include "model/weight_store.h"

namespace fp8llm {

class CpuWeightStore final : public WeightStore {
 public:
  explicit CpuWeightStore(const HostWeights& weights) : weights_(weights) {}
  HeldWeight held_weight(const WeightSpec& spec) const override;
  void read_weight(const WeightSpec& spec, std::span<std::byte> values,
                   std::span<float> scales) const override;

 private:
  const HostWeights& weights_;
};

}  // namespace fp8llm
