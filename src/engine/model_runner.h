// Turns a scheduled step into a Batch, runs the model over it on the backend (a recorded pass for
// decode steps where the backend records them: their batch is padded up to the nearest recorded
// size) and hands back the logits of the sequences that reached their last token.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "core/rank_threads.h"
#include "engine/scheduler.h"
#include "model/backend.h"
#include "model/collective.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"
#include "model/lora_weights.h"
#include "model/shard_plan.h"
#include "model/workspace.h"

namespace fp8llm {

struct RunnerOptions {
  // Decode batch sizes the backend records (Backend::run_pass), ascending; empty: none.
  std::vector<int64_t> recorded_batch_sizes;
  // Block-table width of a recorded pass (the most blocks a sequence can have).
  int64_t max_blocks_per_seq = 0;
  // The model runs the LoRA ops in every pass (the engine has adapter slots).
  bool lora = false;
};

// One rank's device, for a runner over several (tensor parallelism).
struct RankPart {
  Backend* backend = nullptr;
  Workspace* workspace = nullptr;
  KvStorage* kv = nullptr;
};

class ModelRunner {
 public:
  ModelRunner(const LlamaModel& model, Backend& backend, Workspace& workspace, KvStorage& kv,
              RunnerOptions options);
  // Tensor parallel: every rank (rank 0 first) runs each batch over its shard of `shards`, on
  // `threads`; `collectives` is aborted when a rank fails, so that the others do not wait for it.
  // The logits are rank 0's, and the KV block copies are made on every rank.
  ModelRunner(const LlamaModel& model, std::vector<RankPart> ranks, const ShardPlan& shards,
              RankThreads& threads, CollectiveGroup& collectives, RunnerOptions options);

  // The rows of a sequence's prompt positions [first, first + count) (Sequence::prompt_positions),
  // from logits row `row` on.
  struct ScoredRows {
    int32_t row = 0;
    int64_t first = 0;
    int64_t count = 0;
  };
  struct Pass {
    Act logits;                      // [rows, vocab] where the backend computed them
    std::vector<int32_t> row;        // per scheduled sequence: its logits row, or -1 (mid-prompt)
    std::vector<ScoredRows> scored;  // per scheduled sequence (count 0: none)
  };
  // Makes the schedule's block copies, then runs its tokens.
  Pass run(const Schedule& schedule);
  // Runs a batch built elsewhere (the one-sequence incremental API): the logits of its logit rows.
  Act run(Batch& batch);

  Backend& backend() { return *ranks_[0].backend; }
  // LoRA adapter slots on every rank (Backend::reserve_lora / set_lora), each rank given its cut
  // of the adapter (model/lora_shard.h). Between passes.
  void reserve_lora(int slots, int64_t max_rank);
  void set_lora(int slot, const LoraAdapter* adapter);
  // Backend::stage_lora / commit_lora, for an engine of one rank (factors on its device are not
  // cut into shards).
  void stage_lora(int slot, int64_t rank, std::span<const LoraDeviceFactor> factors);
  void commit_lora(int slot);
  int64_t block_size() const { return block_size_; }
  // The KV caches to run over from now on, one per rank (null while the engine sleeps; nothing
  // runs then). A new cache may be elsewhere in memory, so what was recorded over the old one is
  // forgotten.
  void set_kv(const std::vector<KvStorage*>& kv);

 private:
  // Prepares `batch` on every rank and runs the model over it: the logits of rank 0.
  Act forward(int64_t key, const Batch& batch);

  const LlamaModel& model_;
  std::vector<RankPart> ranks_;
  const ShardPlan* shards_ = nullptr;  // tensor parallel only
  RankThreads* threads_ = nullptr;
  CollectiveGroup* collectives_ = nullptr;
  int64_t block_size_;
  RunnerOptions options_;
  Batch batch_;
  std::map<int64_t, Act> recorded_logits_;
};

}  // namespace fp8llm
