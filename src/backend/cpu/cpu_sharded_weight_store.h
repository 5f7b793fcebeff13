// The weights of a tensor-parallel CPU model by checkpoint name (for the state dict, export and
// live updates): each tensor put back together from the ranks' shards (model/shard_plan.h), so N
// ranks list and export the same tensors as one. Where ranks share a part (a replicated tensor,
// the scale of a row or tile that a shard edge cuts) they must agree bit for bit; a disagreement
// is an Error, since it would mean the shards are not parts of one model. A write gives every
// rank its rectangle, quantized as the load quantizes it.
#pragma once

#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "model/shard_plan.h"
#include "model/weight_store.h"

namespace fp8llm {

class CpuShardedWeightStore final : public WeightStore {
 public:
  // `ranks[r]` is rank r's backend; they must outlive the store.
  CpuShardedWeightStore(ShardPlan plan, std::vector<CpuBackend*> ranks);
  HeldWeight held_weight(const WeightSpec& spec) const override;
  void read_weight(const WeightSpec& spec, std::span<std::byte> values,
                   std::span<float> scales) const override;
  // No one memory holds a tensor split over ranks: an Error (views need one place).
  HeldMemory memory(const WeightSpec& spec) override;
  void write(std::span<const WeightWrite> writes) override;

 private:
  ShardPlan plan_;
  std::vector<CpuBackend*> ranks_;
};

}  // namespace fp8llm
