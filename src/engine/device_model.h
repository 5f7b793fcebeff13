// What a load puts on a device, whichever device it is: the backend computing over the weights,
// the weights by checkpoint name, activation memory, a token picker where the logits are (none on
// the CPU, which samples on the host), and the paged KV cache sized from what memory is left.
// A tensor-parallel load (model/shard_plan.h) puts rank 0 in these members and the other ranks
// beside them, each with its own backend over its shard, activation memory and KV cache of its
// own KV heads; one scheduler runs them all on the same Batch.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "core/rank_threads.h"
#include "engine/model_runner.h"
#include "model/backend.h"
#include "model/collective.h"
#include "model/kv_cache.h"
#include "model/shard_plan.h"
#include "model/token_picker.h"
#include "model/weight_store.h"
#include "model/workspace.h"

namespace fp8llm {

// A rank of a tensor-parallel model after the first.
struct RankDevice {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Workspace> workspace;
  std::function<std::unique_ptr<KvStorage>(const KvCacheSpec&)> make_kv;
  std::unique_ptr<KvStorage> kv;
};

struct DeviceModel {
  // Tensor parallelism: the collectives the ranks' backends meet in (first, so that they outlive
  // the backends), and the threads that run the ranks together.
  std::unique_ptr<CollectiveGroup> collectives;
  std::unique_ptr<RankThreads> threads;
  std::optional<ShardPlan> shards;  // unset: one rank holds the whole model
  std::unique_ptr<Backend> backend;
  std::unique_ptr<WeightStore> weights;
  std::unique_ptr<Workspace> workspace;
  std::unique_ptr<TokenPicker> picker;  // null: every draw on the host
  // The KV cache, made once the weights are in place (so that its budget is what is left).
  std::function<std::unique_ptr<KvStorage>(const KvCacheSpec&)> make_kv;
  uint64_t default_kv_bytes = 0;  // the device's budget when LoadOptions gives none
  std::unique_ptr<KvStorage> kv;
  RunnerOptions runner;
  std::vector<RankDevice> peers;  // ranks 1 .. N-1 of a tensor-parallel model
};

}  // namespace fp8llm
