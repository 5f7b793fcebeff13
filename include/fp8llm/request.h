// Requests to the batching engine and what comes back (part of the public API), shaped as vLLM's
// RequestOutput / CompletionOutput.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fp8llm/modes.h"
#include "fp8llm/sampling.h"

namespace fp8llm {

// What Engine::step() reports of a request, as vLLM's RequestOutputKind: after each step that
// changed it, all of it so far (Cumulative) or only what is new since its last report (Delta: the
// prompt's ids and log-probabilities once, then each sample's new tokens); or nothing until it
// finishes (FinalOnly). A long sample reported whole at every step costs the engine thread a copy
// of its history each time; callers that read only the end, or stream through the token callback,
// ask for FinalOnly.
enum class OutputKind { Cumulative, Delta, FinalOnly };

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams params;
  std::string lora;  // the adapter to apply (Engine::add_lora), or empty for the base model
  OutputKind output = OutputKind::Cumulative;
};

// The log-probability of a generated token under the model (log-softmax of the raw logits, before
// temperature, penalties and filters), and of the most likely tokens when asked for.
struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

struct CompletionOutput {
  int index = 0;  // which of the request's n samples
  std::vector<int32_t> token_ids;
  std::vector<TokenLogprob> logprobs;  // one per token when the request asked (logprobs >= 0)
  std::optional<FinishReason> finish_reason;  // set once the sample is done
};

struct RequestOutput {
  uint64_t id = 0;
  std::vector<int32_t> prompt_ids;
  std::vector<CompletionOutput> outputs;  // n, by index
  // Prompt tokens 1, 2, ... under the tokens before them, when the request asked
  // (prompt_logprobs >= 0); complete once the prompt is computed.
  std::vector<TokenLogprob> prompt_logprobs;
  bool finished = false;
  int64_t cached_prompt_tokens = 0;  // prompt tokens whose keys and values the prefix cache held
  // Seconds from the request's arrival to its first token and to its end.
  double first_token_seconds = 0;
  double finished_seconds = 0;
};

// One new token of one sample, as it is produced (on the thread running Engine::step). `finish` is
// set on a sample's last update; a sample that ends without a new token (cancelled, error) gets
// an update with token -1.
struct TokenUpdate {
  uint64_t request = 0;
  int index = 0;
  int32_t token = -1;
  std::optional<TokenLogprob> logprob;  // when the request asked for log-probabilities
  // On each sample's first token, when the request asked (prompt_logprobs >= 0): the prompt's
  // (RequestOutput::prompt_logprobs).
  std::vector<TokenLogprob> prompt_logprobs;
  std::optional<FinishReason> finish;
  std::string error;  // FinishReason::Error: what went wrong
};

// Returning false ends that sample with FinishReason::Stop (e.g. a stop string found in its text).
using TokenCallback = std::function<bool(const TokenUpdate&)>;

// The scheduler's state, for metrics and progress.
struct EngineStats {
  int64_t running = 0;  // sequences being generated
  int64_t waiting = 0;  // sequences waiting for room
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t block_size = 0;
  int64_t prefix_query_tokens = 0;
  int64_t prefix_hit_tokens = 0;
  int64_t prompt_tokens = 0;     // prompt tokens computed
  int64_t generated_tokens = 0;  // tokens sampled
  int64_t preemptions = 0;
  int64_t steps = 0;
};

}  // namespace fp8llm
