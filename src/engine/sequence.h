// The engine's record of requests and of the sequences that generate their samples. A request
// starts with one sequence, which computes the prompt; when the prompt is done it forks into the
// request's n samples, which share the prompt's KV blocks (a shared partly filled block is copied
// before a sample writes into it).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "engine/sampler.h"
#include "fp8llm/request.h"
#include "kv/block_manager.h"

namespace fp8llm {

struct RequestState;

struct Sequence {
  RequestState* request = nullptr;
  int index = 0;                // which sample of the request
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int64_t prompt_len = 0;
  int64_t computed = 0;  // leading tokens whose keys and values are in the cache
  std::vector<int32_t> block_table;
  PrefixChain prefix;
  int32_t lora_slot = -1;
  Sampler sampler;
  std::vector<TokenLogprob> logprobs;
  int64_t reported = 0;  // generated tokens already reported (OutputKind::Delta)
  std::optional<FinishReason> finish;
  std::string error;

  Sequence(RequestState* r, int i, std::vector<int32_t> t, int64_t prompt, Sampler s)
      : request(r), index(i), tokens(std::move(t)), prompt_len(prompt), sampler(std::move(s)) {}
  int64_t length() const { return static_cast<int64_t>(tokens.size()); }
  int64_t generated() const { return length() - prompt_len; }
  // Tokens still to run through the model before the next token can be sampled.
  int64_t pending() const { return length() - computed; }
  bool finished() const { return finish.has_value(); }
  // Of positions [computed, computed + count), those whose logits score the next prompt token,
  // [first, end): those the request asked for (prompt_logprobs) and has not had yet (a sequence
  // computed again after preemption does not score its prompt twice).
  std::pair<int64_t, int64_t> prompt_positions(int64_t count) const;
  // The rows of logits a pass of `count` more tokens needs: those positions', and the last
  // token's when the pass reaches it (the next token is drawn from it).
  int64_t logit_rows(int64_t count) const;
};

struct RequestState {
  uint64_t id = 0;
  GenerationRequest spec;
  uint64_t seed = 0;  // the request's, or a random one
  int32_t lora_slot = -1;
  uint64_t prefix_root = kPrefixRoot;
  TokenCallback on_token;
  // The prompt sequence until it forks, then the n samples (by index).
  std::vector<std::unique_ptr<Sequence>> sequences;
  bool forked = false;
  bool aborted = false;
  int64_t cached_prompt_tokens = 0;
  std::chrono::steady_clock::time_point arrival;
  std::optional<double> first_token_seconds;
  double finished_seconds = 0;
  std::vector<TokenLogprob> prompt_logprobs;  // of prompt tokens 1, 2, ... so far
  // What earlier outputs held (OutputKind::Delta): the prompt's ids, its log-probabilities.
  bool prompt_reported = false;
  size_t prompt_logprobs_reported = 0;

  bool finished() const {
    if (!forked && spec.params.n > 1) return !sequences.empty() && sequences[0]->finished();
    for (const auto& s : sequences)
      if (!s->finished()) return false;
    return true;
  }
};

inline std::pair<int64_t, int64_t> Sequence::prompt_positions(int64_t count) const {
  if (request->spec.params.prompt_logprobs < 0) return {0, 0};
  const auto scored = static_cast<int64_t>(request->prompt_logprobs.size());
  const int64_t first = std::max(computed, scored);
  const int64_t end = std::min(computed + count, prompt_len - 1);
  return first < end ? std::pair{first, end} : std::pair{first, first};
}

inline int64_t Sequence::logit_rows(int64_t count) const {
  const auto [first, end] = prompt_positions(count);
  return end - first + (computed + count == length() ? 1 : 0);
}

}  // namespace fp8llm
