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

}  // namespace fp8llm
