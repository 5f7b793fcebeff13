// Log-softmax, NLL, KL divergence, top-1 and quantiles against values computed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "eval/statistics.h"
#include "test_util.h"

namespace fp8llm::eval {
namespace {

TEST(Statistics, LogSoftmaxOfKnownProbabilities) {
  // exp(0) : exp(log 3) = 1 : 3, so the probabilities are 1/4 and 3/4.
  const std::vector<float> logits{0.0f, static_cast<float>(std::log(3.0))};
  std::vector<float> out(2);
  log_softmax(logits, out);
  EXPECT_NEAR(out[0], std::log(0.25), 1e-7);
  EXPECT_NEAR(out[1], std::log(0.75), 1e-7);
}

TEST(Statistics, LogSoftmaxDoesNotOverflow) {
  // Logits far beyond what exp() holds in float or double give the same answer as shifted ones.
  const std::vector<float> logits{1000.0f, 1000.0f, 1000.0f, 1000.0f};
  std::vector<float> out(4);
  log_softmax(logits, out);
  for (float v : out) EXPECT_NEAR(v, -std::log(4.0), 1e-7);
}

TEST(Statistics, NegativeLogLikelihood) {
  const std::vector<float> uniform(8, 0.5f);
  EXPECT_NEAR(negative_log_likelihood(uniform, 3), std::log(8.0), 1e-12);
  // P(target) = e^2 / (e^2 + 2) for logits {0, 2, 0}.
  const std::vector<float> peaked{0.0f, 2.0f, 0.0f};
  EXPECT_NEAR(negative_log_likelihood(peaked, 1), std::log(std::exp(2.0) + 2) - 2, 1e-12);
  EXPECT_NEAR(negative_log_likelihood(peaked, 0), std::log(std::exp(2.0) + 2), 1e-12);
  EXPECT_NE(test::error_of([&] { negative_log_likelihood(peaked, 3); }).find("target token 3"),
            std::string::npos);
}

TEST(Statistics, KlDivergenceOfKnownDistributions) {
  const auto lg = [](double p) { return static_cast<float>(std::log(p)); };
  const std::vector<float> p{lg(0.5), lg(0.5)}, q{lg(0.25), lg(0.75)};
  // 0.5 log(0.5 / 0.25) + 0.5 log(0.5 / 0.75) = 0.5 log(4 / 3)
  EXPECT_NEAR(kl_divergence(p, q), 0.5 * std::log(4.0 / 3.0), 1e-7);
  // 0.25 log(0.25 / 0.5) + 0.75 log(0.75 / 0.5) = 0.75 log 3 - log 2
  EXPECT_NEAR(kl_divergence(q, p), 0.75 * std::log(3.0) - std::log(2.0), 1e-7);
  EXPECT_EQ(kl_divergence(p, p), 0.0);
}

TEST(Statistics, KlDivergenceSkipsImpossibleTokens) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> p{0.0f, -inf},
      q{static_cast<float>(std::log(0.5)), static_cast<float>(std::log(0.5))};
  EXPECT_NEAR(kl_divergence(p, q), std::log(2.0), 1e-7);
}

TEST(Statistics, ArgmaxTakesTheFirstOfEqualValues) {
  EXPECT_EQ(argmax(std::vector<float>{1, 3, 2, 3}), 1);
  EXPECT_EQ(argmax(std::vector<float>{-5}), 0);
}

TEST(Statistics, NearestRankQuantile) {
  for (int n : {100, 200, 1000, 3700}) {
    std::vector<double> values;
    for (int i = n; i >= 1; --i) values.push_back(i);  // unsorted on purpose
    EXPECT_EQ(nearest_rank_quantile(values, 0.99), std::ceil(0.99 * n - 1e-9)) << n;
    EXPECT_EQ(nearest_rank_quantile(values, 1.0), n);
  }
  EXPECT_EQ(nearest_rank_quantile({7.0}, 0.99), 7.0);
  EXPECT_EQ(nearest_rank_quantile({2.0, 1.0}, 0.5), 1.0);
  EXPECT_EQ(nearest_rank_quantile({2.0, 1.0}, 0.51), 2.0);
  // 10 values: the 99th percentile is the 10th smallest, the largest.
  EXPECT_EQ(nearest_rank_quantile({0, 0, 0, 0, 0, 0, 0, 0, 0, 5}, 0.99), 5.0);
}

TEST(Statistics, NllSumGivesPerplexity) {
  NllSum s;
  EXPECT_EQ(s.mean(), 0.0);
  s.add(std::log(2.0));
  s.add(std::log(8.0));
  EXPECT_EQ(s.count(), 2);
  EXPECT_NEAR(s.perplexity(), 4.0, 1e-12);  // exp((log 2 + log 8) / 2) = sqrt(16)
}

TEST(Statistics, DivergenceSummary) {
  DivergenceStats stats;
  stats.add(0.1, true);
  stats.add(0.3, false);
  stats.add(0.2, true);
  stats.add(0.0, true);
  const Divergence d = stats.summary();
  EXPECT_EQ(d.positions, 4);
  EXPECT_NEAR(d.kl_mean, 0.15, 1e-15);
  EXPECT_EQ(d.kl_p99, 0.3);
  EXPECT_EQ(d.kl_max, 0.3);
  EXPECT_EQ(d.top_agree, 3);
  EXPECT_EQ(d.top_agreement(), 0.75);
  EXPECT_EQ(DivergenceStats{}.summary().positions, 0);
}

}  // namespace
}  // namespace fp8llm::eval
