#include "backend/cpu/logits.h"

#include <cmath>
#include <stdexcept>

namespace fp8llm::cpu {

int64_t argmax(const float* x, int64_t n) {
  if (n <= 0) throw std::invalid_argument("argmax: empty row");
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return i;
    if (x[i] > x[best]) best = i;
  }
  return best;
}

void log_softmax(const float* x, int64_t n, float* out) {
  if (n <= 0) return;
  float max_x = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max_x = std::fmax(max_x, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double{x[i]} - max_x);
  const double log_sum_exp = max_x + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(double{x[i]} - log_sum_exp);
}

}  // namespace fp8llm::cpu
