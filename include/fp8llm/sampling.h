// Per-request sampling settings (part of the public API), named as vLLM's SamplingParams names
// them.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace fp8llm {

struct SamplingParams {
  int n = 1;                 // samples of the prompt; they share its KV blocks
  float temperature = 0.0f;  // 0: greedy (argmax)
  int top_k = 0;             // 0 or -1: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off; keeps tokens with p >= min_p * p_max
  float repetition_penalty =
      1.0f;                       // 1: off; as in transformers (divide positive, multiply negative)
  float presence_penalty = 0.0f;  // OpenAI's: minus this for every token already generated
  float frequency_penalty = 0.0f;  // OpenAI's: minus this times the times it was generated
  // Same seed, prompt and parameters: same tokens. Unset: a random seed. Sample i > 0 of n draws
  // from a seed derived from (seed, i); sample 0 from the seed itself.
  std::optional<uint64_t> seed = 0;
  int max_tokens = 16;  // tokens to generate at most (the context may end a sample sooner)
  // Tokens generated before the model's EOS tokens and stop_token_ids may be drawn (vLLM's): until
  // then they are never drawn (stop strings are matched from the start).
  int min_tokens = 0;
  std::vector<int32_t> stop_token_ids;  // end a sample (the token is part of the output)
  // Added to the logits of these token ids before a draw (OpenAI's logit_bias, in [-100, 100]; -100
  // all but bans a token). Log-probabilities stay the raw logits'.
  std::vector<std::pair<int32_t, float>> logit_bias;
  bool ignore_eos = false;  // do not stop at the model's end-of-sequence tokens
  // -1: no log-probabilities; 0: the sampled token's; K (<= 20): also the K most likely tokens'.
  int logprobs = -1;
  // The same for the prompt's tokens (from the second on: the first has nothing before it). Such
  // a request computes its whole prompt: it takes nothing from the prefix cache.
  int prompt_logprobs = -1;
};

inline constexpr int kMaxLogprobs = 20;

}  // namespace fp8llm
