// Sampling settings for generation (part of the public API).
#pragma once

#include <cstdint>

namespace fp8llm {

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy (argmax)
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off; keeps tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // 1: off; as in transformers (divide positive, multiply negative)
  uint64_t seed = 0;
};

}  // namespace fp8llm
