// Picks the next token from a row of logits: greedy, or sampling with temperature, top-k, top-p,
// min-p and the repetition, presence and frequency penalties, from a seeded generator (same seed
// and inputs, same tokens).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "fp8llm/sampling.h"
#include "model/token_picker.h"

namespace fp8llm {

struct SampledToken {
  int32_t id;
  // log-probability of `id` under the model's distribution (log-softmax of the raw logits,
  // before temperature and filtering).
  float logprob;
};

// Throws Error naming the first field of `params` out of its range.
void check_sampling_params(const SamplingParams& params);

// The seed sample `index` of a request draws from: the request's own for sample 0, one derived
// from it for the others (a request without a seed gets a random one first).
uint64_t sample_seed(uint64_t request_seed, int index);
uint64_t random_seed();

class Sampler {
 public:
  // Checks `params` (check_sampling_params); draws from `params.seed` (random when unset).
  explicit Sampler(SamplingParams params);
  Sampler(SamplingParams params, uint64_t seed);
  const SamplingParams& params() const { return params_; }
  // `history`: the tokens so far (prompt and generated), for the repetition penalty; `generated`:
  // the generated ones, for the presence and frequency penalties; `banned`: ids never drawn
  // (min_tokens' stop tokens). The log-probability is the raw logits' all the same.
  SampledToken sample(std::span<const float> logits, std::span<const int32_t> history,
                      std::span<const int32_t> generated = {},
                      std::span<const int32_t> banned = {});

  // Whether a draw depends on the logits and one uniform number alone (no penalty, no logit bias),
  // so that it can be drawn where the logits are: TokenPicker::pick with shape() and, unless
  // greedy, uniform().
  bool draws_from_logits_alone() const;
  SampleShape shape() const;
  double uniform();

 private:
  // Sampling from work_ (the logits after the repetition penalty) at params_.temperature.
  int32_t draw();
  // Token a ranks before token b: a higher logit, or the same and a lower id.
  bool more_likely(int32_t a, int32_t b) const;

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> work_;
  std::vector<double> weight_;  // exp((logit - max) / temperature) per kept token id, else 0
  std::vector<int32_t> order_;  // token ids, the kept ones first
};

}  // namespace fp8llm
