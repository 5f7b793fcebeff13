// The weights of a tensor-parallel CPU model by checkpoint name (for the state dict and export):
// each tensor put back together from the ranks' shards (model/shard_plan.h), so N ranks list and
// export the same tensors as one. Where ranks share a part (a replicated tensor, the scale of a
// row or tile that a shard boundary cuts) they must agree bit for bit; a disagreement is an
// Error, since it would mean the shards are not parts of one model.
#pragma once

#include <vector>

#include "model/host_weights.h"
#include "model/shard_plan.h"
#include "model/weight_store.h"

namespace fp8llm {

class CpuShardedWeightStore final : public WeightStore {
 public:
  // `ranks[r]` is rank r's weights; they must outlive the store.
  CpuShardedWeightStore(ShardPlan plan, std::vector<const HostWeights*> ranks);
  HeldWeight held_weight(const WeightSpec& spec) const override;
  void read_weight(const WeightSpec& spec, std::span<std::byte> values,
                   std::span<float> scales) const override;

 private:
  ShardPlan plan_;
  std::vector<const HostWeights*> ranks_;
};

}  // namespace fp8llm
