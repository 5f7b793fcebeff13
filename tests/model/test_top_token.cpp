// top_token: the first of equal maxima, and the log-softmax at it.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/top_token.h"

namespace fp8llm {
namespace {

TEST(TopToken, FirstOfEqualMaximaAndItsLogSoftmax) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  const TopToken t = top_token(logits);
  EXPECT_EQ(t.id, 1);
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - 3.0);
  EXPECT_NEAR(t.logprob, -std::log(sum), 1e-7);
  EXPECT_EQ(argmax(std::vector<float>{-5.0f}), 0);
  EXPECT_NEAR(log_softmax_at(std::vector<float>{0.0f, 0.0f}, 1), -std::log(2.0), 1e-7);
}

TEST(TopToken, LargeLogitsDoNotOverflow) {
  const std::vector<float> logits = {1e30f, 1e30f - 1e24f, -1e30f};
  const TopToken t = top_token(logits);
  EXPECT_EQ(t.id, 0);
  EXPECT_TRUE(std::isfinite(t.logprob));
  EXPECT_LE(t.logprob, 0.0f);
}

}  // namespace
}  // namespace fp8llm
