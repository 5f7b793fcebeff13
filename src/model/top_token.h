// The most likely token of a row of logits and its log-probability: what greedy decoding needs.
// Shared by the sampler and the CPU backend; the CUDA backend computes the same on the device.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace fp8llm {

struct TopToken {
  int32_t id = 0;
  // log-softmax of the raw logits at `id`
  float logprob = 0;
};

// Index of the largest value (the first of equal ones).
int32_t argmax(std::span<const float> x);
// log(softmax(logits))[id], summed in double.
float log_softmax_at(std::span<const float> logits, int32_t id);
TopToken top_token(std::span<const float> logits);
// The k most likely tokens with their log-softmax, most likely first (equal logits: lower id
// first).
std::vector<std::pair<int32_t, float>> top_logprobs(std::span<const float> logits, int k);

}  // namespace fp8llm
