// Turns a scheduled step into a Batch, runs the model over it on the backend (a recorded pass for
// decode steps where the backend records them: their batch is padded up to the nearest recorded
// size) and hands back the logits of the sequences that reached their last token.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "engine/scheduler.h"
#include "model/backend.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"
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

class ModelRunner {
 public:
  ModelRunner(const LlamaModel& model, Backend& backend, Workspace& workspace, KvStorage& kv,
              RunnerOptions options);

  struct Pass {
    Act logits;                // [rows, vocab] where the backend computed them
    std::vector<int32_t> row;  // per scheduled sequence: its logits row, or -1 (mid-prompt)
  };
  // Makes the schedule's block copies, then runs its tokens.
  Pass run(const Schedule& schedule);
  // Runs a batch built elsewhere (the one-sequence incremental API): the logits of its logit rows.
  Act run(Batch& batch);

  Backend& backend() { return backend_; }
  int64_t block_size() const { return block_size_; }
  // The KV cache to run over from now on (null while the engine sleeps; nothing runs then). A new
  // cache may be elsewhere in memory, so what was recorded over the old one is forgotten.
  void set_kv(KvStorage* kv);

 private:
  const LlamaModel& model_;
  Backend& backend_;
  Workspace& workspace_;
  KvStorage* kv_;
  int64_t block_size_;
  RunnerOptions options_;
  Batch batch_;
  std::map<int64_t, Act> recorded_logits_;
};

}  // namespace fp8llm
