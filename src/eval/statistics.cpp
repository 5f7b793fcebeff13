#include "eval/statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace fp8llm::eval {
namespace {

// log sum_v exp(x_v), shifted by the maximum so that nothing overflows.
double log_sum_exp(std::span<const float> x) {
  FP8LLM_CHECK(!x.empty(), "log-softmax of an empty row");
  const double top = *std::max_element(x.begin(), x.end());
  double sum = 0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - top);
  return top + std::log(sum);
}

}  // namespace

void log_softmax(std::span<const float> logits, std::span<float> out) {
  FP8LLM_CHECK(out.size() == logits.size(), "log-softmax: {} outputs for {} logits", out.size(),
               logits.size());
  const double lse = log_sum_exp(logits);
  for (size_t i = 0; i < logits.size(); ++i)
    out[i] = static_cast<float>(static_cast<double>(logits[i]) - lse);
}

double negative_log_likelihood(std::span<const float> logits, int64_t target) {
  FP8LLM_CHECK(target >= 0 && static_cast<size_t>(target) < logits.size(),
               "target token {} is outside the vocabulary of {}", target, logits.size());
  return log_sum_exp(logits) - static_cast<double>(logits[static_cast<size_t>(target)]);
}

double kl_divergence(std::span<const float> log_p, std::span<const float> log_q) {
  FP8LLM_CHECK(log_p.size() == log_q.size(), "KL divergence of rows of {} and {} values",
               log_p.size(), log_q.size());
  double kl = 0;
  for (size_t i = 0; i < log_p.size(); ++i) {
    const double p = std::exp(static_cast<double>(log_p[i]));
    if (p > 0) kl += p * (static_cast<double>(log_p[i]) - static_cast<double>(log_q[i]));
  }
  return kl;
}

int64_t argmax(std::span<const float> row) {
  FP8LLM_CHECK(!row.empty(), "argmax of an empty row");
  return std::max_element(row.begin(), row.end()) - row.begin();
}

double nearest_rank_quantile(std::vector<double> values, double q) {
  FP8LLM_CHECK(!values.empty(), "quantile of no values");
  FP8LLM_CHECK(q > 0 && q <= 1, "quantile {} is outside (0, 1]", q);
  const auto n = static_cast<double>(values.size());
  // q * n in floating point can land a hair above an integer (0.99 is not exact); the shrink keeps
  // such a product on its integer.
  const auto rank = static_cast<size_t>(std::ceil(q * n * (1 - 1e-12)));
  const auto at = values.begin() + static_cast<std::ptrdiff_t>(std::max<size_t>(rank, 1) - 1);
  std::nth_element(values.begin(), at, values.end());
  return *at;
}

double NllSum::mean() const {
  return count_ ? sum_ / static_cast<double>(count_) : 0.0;
}

double NllSum::perplexity() const {
  return std::exp(mean());
}

double Divergence::top_agreement() const {
  return positions ? static_cast<double>(top_agree) / static_cast<double>(positions) : 0.0;
}

Divergence DivergenceStats::summary() const {
  Divergence d;
  d.positions = static_cast<int64_t>(kl_.size());
  d.top_agree = agree_;
  if (kl_.empty()) return d;
  d.kl_mean = std::accumulate(kl_.begin(), kl_.end(), 0.0) / static_cast<double>(kl_.size());
  d.kl_p99 = nearest_rank_quantile(kl_, 0.99);
  d.kl_max = *std::max_element(kl_.begin(), kl_.end());
  return d;
}

}  // namespace fp8llm::eval
