#include "engine/warm_up.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace fp8llm {

double warm_up(Engine& engine, int64_t requests, int64_t prompt_tokens, int output_tokens) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t length = std::clamp<int64_t>(
      prompt_tokens, 1, std::max<int64_t>(1, engine.max_context() - output_tokens));
  std::vector<GenerationRequest> batch;
  for (int64_t r = 0; r < requests; ++r) {
    GenerationRequest g;
    // Distinct prompts, so that none is served from another's cached prefix.
    for (int64_t i = 0; i < length; ++i)
      g.prompt.push_back(static_cast<int32_t>((r * 7919 + i * 31 + 1) % engine.vocab_size()));
    g.params.max_tokens = output_tokens;
    g.params.ignore_eos = true;
    batch.push_back(std::move(g));
  }
  engine.generate(std::move(batch));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace fp8llm
