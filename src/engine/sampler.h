// Picks the next token from a row of logits: greedy, or sampling with temperature, top-k, top-p,
// min-p and a repetition penalty, from a seeded generator (same seed and inputs, same tokens).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "fp8llm/sampling.h"
#include "model/backend.h"

namespace fp8llm {

struct SampledToken {
  int32_t id;
  // log-probability of `id` under the model's distribution (log-softmax of the raw logits,
  // before temperature and filtering).
  float logprob;
};

class Sampler {
 public:
  explicit Sampler(SamplingParams params);
  const SamplingParams& params() const { return params_; }
  // `history`: the tokens so far (prompt and generated), for the repetition penalty.
  SampledToken sample(std::span<const float> logits, std::span<const int32_t> history);

  // Whether a draw depends on the logits and one uniform number alone (temperature > 0 and no
  // repetition penalty), so that a backend can draw it where the logits are:
  // Backend::sample_token(logits, shape(), uniform()).
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
