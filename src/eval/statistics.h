// The per-position numbers of `fp8llm perplexity`: log-softmax, negative log-likelihood, the KL
// divergence between two models' next-token distributions and whether their top tokens agree,
// and their sums. Everything is computed in double; rows of logits or log-probabilities are
// float, as the engine returns them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace fp8llm::eval {

// log softmax(logits) into `out` (the same length).
void log_softmax(std::span<const float> logits, std::span<float> out);

// -log softmax(logits)[target].
double negative_log_likelihood(std::span<const float> logits, int64_t target);

// KL(P || Q) = sum_v P(v) (log P(v) - log Q(v)) for two rows of log-probabilities. Terms where
// P(v) is 0 contribute 0.
double kl_divergence(std::span<const float> log_p, std::span<const float> log_q);

// The index of the largest value; the first of equal ones.
int64_t argmax(std::span<const float> row);

// The q-quantile by nearest rank: the ceil(q * n)-th smallest value (q in (0, 1]; values not
// empty).
double nearest_rank_quantile(std::vector<double> values, double q);

// Sum of negative log-likelihoods over scored positions.
class NllSum {
 public:
  void add(double nll) {
    sum_ += nll;
    ++count_;
  }
  double sum() const { return sum_; }
  int64_t count() const { return count_; }
  double mean() const;        // 0 when empty
  double perplexity() const;  // exp(mean)

 private:
  double sum_ = 0;
  int64_t count_ = 0;
};

// What a run's distributions did against a baseline's, position by position.
struct Divergence {
  int64_t positions = 0;
  double kl_mean = 0;
  double kl_p99 = 0;  // nearest rank
  double kl_max = 0;
  int64_t top_agree = 0;  // positions whose top tokens are the same
  double top_agreement() const;
};

class DivergenceStats {
 public:
  void add(double kl, bool same_top) {
    kl_.push_back(kl);
    agree_ += same_top;
  }
  Divergence summary() const;

 private:
  std::vector<double> kl_;
  int64_t agree_ = 0;
};

}  // namespace fp8llm::eval
