// The batching engine: requests in, tokens out, one step at a time. Each step schedules
// (scheduler.h), runs the model over the scheduled tokens (model_runner.h), draws the next tokens
// (token_sampling.h) and retires what finished. Requests may be added and aborted from any thread
// while one thread runs step().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/lora_slots.h"
#include "engine/model_runner.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"
#include "engine/token_sampling.h"
#include "fp8llm/request.h"
#include "kv/block_manager.h"
#include "model/token_picker.h"

namespace fp8llm {

struct EngineLimits {
  int64_t vocab_size = 0;
  int64_t max_context = 0;             // positions one sequence may reach
  std::vector<int32_t> eos_token_ids;  // end a sample unless the request ignores them
};

class LlmEngine {
 public:
  // `lora` may be null (no adapters).
  LlmEngine(ModelRunner& runner, TokenPicker* picker, BlockManager& blocks,
            SchedulerConfig scheduling, EngineLimits limits, LoraSlots* lora = nullptr);

  // Checks the request (an Error names the field at fault; nothing is queued then) and queues it.
  uint64_t add_request(GenerationRequest request, TokenCallback on_token = {});
  // Ends a request's samples (FinishReason::Cancelled) and frees its blocks at the next step.
  void abort(uint64_t id);
  // One step; returns the requests that changed, as they stand after it.
  std::vector<RequestOutput> step();
  bool has_unfinished() const;
  // As of the end of the last step (any thread may ask while another steps).
  EngineStats stats() const;
  // Takes the snapshot again now (after the KV cache was reset outside a step).
  void refresh_stats();
  const EngineLimits& limits() const { return limits_; }
  // Forgets the prefix cache (the keys and values it holds no longer match the weights).
  void reset_prefix_cache() { blocks_.reset_prefix_cache(); }

 private:
  void take_incoming();
  void fork(RequestState& request);
  // Appends a sampled token to `seq`, tells the request's callback, and decides whether the
  // sample is done.
  void append(Sequence& seq, const SampledStep& step);
  // Adds the log-probabilities of the prompt tokens that `rows` of `logits` score.
  void score_prompt(Sequence& seq, const ModelRunner::ScoredRows& rows, Act logits);
  void finish(Sequence& seq, FinishReason reason, std::string error = {});
  // What step() reports of `request` now (its OutputKind), noting what a Delta has reported.
  static RequestOutput output_of(RequestState& request);
  EngineStats measure() const;

  ModelRunner& runner_;
  TokenPicker* picker_;
  BlockManager& blocks_;
  Scheduler scheduler_;
  EngineLimits limits_;
  LoraSlots* lora_;

  mutable std::mutex mutex_;  // guards the three below
  std::vector<std::unique_ptr<RequestState>> incoming_;
  std::vector<uint64_t> aborts_;
  uint64_t next_id_ = 1;
  int64_t unfinished_ = 0;
  EngineStats stats_;

  std::unordered_map<uint64_t, std::unique_ptr<RequestState>> requests_;
  int64_t prompt_tokens_ = 0;
  int64_t generated_tokens_ = 0;
  int64_t steps_ = 0;
};

}  // namespace fp8llm
