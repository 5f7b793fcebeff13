// The sampler: greedy picks the argmax; filters (top-k, top-p, min-p) never let an excluded token
// through; the same seed gives the same tokens; the repetition penalty follows transformers.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "engine/sampler.h"

namespace fp8llm {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f, -1.0f};

TEST(Sampler, GreedyIsArgmaxWithLogprob) {
  Sampler s({});
  const SampledToken t = s.sample(kLogits, {});
  EXPECT_EQ(t.id, 1);
  double sum = 0;
  for (float v : kLogits) sum += std::exp(v - 3.0);
  EXPECT_NEAR(t.logprob, -std::log(sum), 1e-6);
}

TEST(Sampler, SameSeedSameTokens) {
  auto run = [](uint64_t seed) {
    Sampler s({.temperature = 1.0f, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(kLogits, {}).id);
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

std::set<int32_t> support(SamplingParams p, int draws = 3000) {
  Sampler s(p);
  std::set<int32_t> seen;
  for (int i = 0; i < draws; ++i) seen.insert(s.sample(kLogits, {}).id);
  return seen;
}

TEST(Sampler, TopKKeepsOnlyTheKMostLikely) {
  EXPECT_EQ(support({.temperature = 1.0f, .top_k = 2, .seed = 1}), (std::set<int32_t>{1, 4}));
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // p(1) ~ 0.38, p(4) ~ 0.34, p(2) ~ 0.14: 0.6 needs tokens 1 and 4.
  EXPECT_EQ(support({.temperature = 1.0f, .top_p = 0.6f, .seed = 2}), (std::set<int32_t>{1, 4}));
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  // min_p 0.3: keep p >= 0.3 * p(1): tokens 1, 4 and 2 (p(2)/p(1) = e^-1 = 0.37).
  EXPECT_EQ(support({.temperature = 1.0f, .min_p = 0.3f, .seed = 3}), (std::set<int32_t>{1, 2, 4}));
}

TEST(Sampler, LowTemperatureApproachesGreedy) {
  EXPECT_EQ(support({.temperature = 0.01f, .seed = 4}), (std::set<int32_t>{1}));
}

TEST(Sampler, SamplingFrequenciesFollowSoftmax) {
  Sampler s({.temperature = 1.0f, .seed = 5});
  std::map<int32_t, int> counts;
  const int n = 40000;
  for (int i = 0; i < n; ++i) counts[s.sample(kLogits, {}).id]++;
  double z = 0;
  for (float v : kLogits) z += std::exp(v);
  for (size_t id = 0; id < kLogits.size(); ++id) {
    const double p = std::exp(kLogits[id]) / z;
    EXPECT_NEAR(counts[static_cast<int32_t>(id)] / double(n), p, 0.01) << id;
  }
}

TEST(Sampler, RepetitionPenaltyAsTransformers) {
  // Token 1 (logit 3) seen twice is divided by 2 once: 1.5 < 2.9, so greedy picks 4.
  Sampler s({.repetition_penalty = 2.0f});
  const std::vector<int32_t> history = {1, 1};
  EXPECT_EQ(s.sample(kLogits, history).id, 4);
  // Negative logits are multiplied: token 5 (-1) becomes -2, still last.
  const std::vector<float> neg = {-1.0f, -1.5f};
  const std::vector<int32_t> h0 = {0};
  EXPECT_EQ(Sampler({.repetition_penalty = 2.0f}).sample(neg, h0).id, 1);
}

// Only temperature alone may be sampled by a backend; its draws are in [0, 1) and follow the seed.
TEST(Sampler, TemperatureOnlyAndUniformDraws) {
  EXPECT_TRUE(Sampler({.temperature = 0.8f}).temperature_only());
  EXPECT_FALSE(Sampler({.temperature = 0.0f}).temperature_only());
  EXPECT_FALSE(Sampler({.temperature = 0.8f, .top_k = 5}).temperature_only());
  EXPECT_FALSE(Sampler({.temperature = 0.8f, .top_p = 0.9f}).temperature_only());
  EXPECT_FALSE(Sampler({.temperature = 0.8f, .min_p = 0.1f}).temperature_only());
  EXPECT_FALSE(Sampler({.temperature = 0.8f, .repetition_penalty = 1.1f}).temperature_only());
  Sampler a({.temperature = 1.0f, .seed = 3}), b({.temperature = 1.0f, .seed = 3});
  Sampler c({.temperature = 1.0f, .seed = 4});
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double u = a.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    EXPECT_EQ(u, b.uniform());
    differs = differs || u != c.uniform();
  }
  EXPECT_TRUE(differs);
}

TEST(Sampler, RejectsBadParameters) {
  EXPECT_THROW(Sampler({.temperature = -1.0f}), Error);
  EXPECT_THROW(Sampler({.top_p = 0.0f}), Error);
  EXPECT_THROW(Sampler({.top_p = 1.5f}), Error);
  EXPECT_THROW(Sampler({.min_p = 2.0f}), Error);
  EXPECT_THROW(Sampler({.repetition_penalty = 0.0f}), Error);
  EXPECT_THROW(Sampler({.top_k = -1}), Error);
}

}  // namespace
}  // namespace fp8llm
