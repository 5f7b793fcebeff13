#include "model/top_token.h"

#include <algorithm>
#include <cmath>

namespace fp8llm {

int32_t argmax(std::span<const float> x) {
  return static_cast<int32_t>(std::max_element(x.begin(), x.end()) - x.begin());
}

float log_softmax_at(std::span<const float> logits, int32_t id) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  return static_cast<float>(static_cast<double>(logits[static_cast<size_t>(id)]) - max -
                            std::log(sum));
}

TopToken top_token(std::span<const float> logits) {
  const int32_t id = argmax(logits);
  return {id, log_softmax_at(logits, id)};
}

std::vector<std::pair<int32_t, float>> top_logprobs(std::span<const float> logits, int k) {
  std::vector<std::pair<int32_t, float>> out;
  if (k <= 0 || logits.empty()) return out;
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double log_z = static_cast<double>(max) + std::log(sum);
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const size_t n = std::min(ids.size(), static_cast<size_t>(k));
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(),
                    [&](int32_t a, int32_t b) {
                      const float la = logits[static_cast<size_t>(a)];
                      const float lb = logits[static_cast<size_t>(b)];
                      return la > lb || (la == lb && a < b);
                    });
  for (size_t i = 0; i < n; ++i) {
    const float l = logits[static_cast<size_t>(ids[i])];
    out.emplace_back(ids[i], static_cast<float>(static_cast<double>(l) - log_z));
  }
  return out;
}

}  // namespace fp8llm
