#include "eval/windows.h"

#include <algorithm>

#include "core/error.h"

namespace fp8llm::eval {

std::vector<Window> plan_windows(int64_t n_tokens, int64_t context, int64_t stride) {
  FP8LLM_CHECK(context >= 2, "context {}: at least 2 tokens are needed", context);
  FP8LLM_CHECK(stride >= 1 && stride <= context,
               "stride {}: must be between 1 and the context ({})", stride, context);
  FP8LLM_CHECK(n_tokens >= 2, "{} tokens: at least 2 are needed to score one", n_tokens);
  std::vector<Window> windows;
  int64_t previous_end = 0;
  for (int64_t begin = 0;; begin += stride) {
    const int64_t end = std::min(begin + context, n_tokens);
    const int64_t first = std::max(previous_end, begin + 1);
    if (first < end) windows.push_back({begin, end, first});
    if (end == n_tokens) return windows;
    previous_end = end;
  }
}

int64_t scored_positions(std::span<const Window> windows) {
  int64_t n = 0;
  for (const Window& w : windows) n += w.end - w.first_target;
  return n;
}

}  // namespace fp8llm::eval
