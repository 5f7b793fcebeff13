// The sampler: greedy picks the argmax; filters (top-k, top-p, min-p) never let an excluded token
// through; on a large vocabulary every draw equals the definition computed by brute force; the
// same seed gives the same tokens; the repetition penalty follows transformers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "core/error.h"
#include "engine/sampler.h"
#include "sampling_reference.h"

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

TEST(Sampler, DrawsEqualTheDefinitionOnALargeVocabulary) {
  // 30,000 logits: a long tail, a few likely tokens, and ties (equal logits rank by id).
  std::mt19937_64 rng(11);
  std::normal_distribution<float> noise(0.0f, 1.5f);
  std::vector<float> logits(30000);
  for (float& v : logits) v = std::round(noise(rng) * 64.0f) / 64.0f;
  for (int i = 0; i < 12; ++i) logits[static_cast<size_t>(i * 2477)] = 9.0f - 0.25f * (i / 2);
  const SamplingParams cases[] = {
      {.temperature = 0.8f, .seed = 1},
      {.temperature = 0.8f, .top_k = 40, .seed = 2},
      {.temperature = 0.7f, .top_p = 0.9f, .seed = 3},
      {.temperature = 1.0f, .min_p = 0.05f, .seed = 4},
      {.temperature = 0.9f, .top_k = 3000, .top_p = 0.8f, .min_p = 0.001f, .seed = 5},
      {.temperature = 2.0f, .top_p = 0.5f, .seed = 6},  // flat: a nucleus of thousands
      {.temperature = 1.0f, .top_k = 5, .top_p = 0.99f, .seed = 7},
  };
  for (const SamplingParams& p : cases) {
    SCOPED_TRACE(::testing::Message() << "T " << p.temperature << " top_k " << p.top_k << " top_p "
                                      << p.top_p << " min_p " << p.min_p);
    // The same uniform stream as the sampler's.
    const test::KeptTokens kept =
        test::reference_kept(logits, p.temperature, p.top_k, p.top_p, p.min_p);
    std::mt19937_64 draws(*p.seed);
    std::vector<int32_t> expected;
    for (int i = 0; i < 100; ++i)
      expected.push_back(kept.pick(std::uniform_real_distribution<double>(0.0, kept.total)(draws)));
    Sampler s(p);
    for (size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(s.sample(logits, {}).id, expected[i]) << i;
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

// Draws without a penalty may be picked where the logits are (greedy ones too); uniform draws are
// in [0, 1) and follow the seed.
TEST(Sampler, DrawsFromLogitsAloneAndUniformDraws) {
  EXPECT_TRUE(Sampler({.temperature = 0.8f}).draws_from_logits_alone());
  EXPECT_TRUE(Sampler({.temperature = 0.8f, .top_k = 5}).draws_from_logits_alone());
  EXPECT_TRUE(Sampler({.temperature = 0.8f, .top_p = 0.9f}).draws_from_logits_alone());
  EXPECT_TRUE(Sampler({.temperature = 0.8f, .min_p = 0.1f}).draws_from_logits_alone());
  EXPECT_TRUE(Sampler({.temperature = 0.0f}).draws_from_logits_alone());
  EXPECT_FALSE(
      Sampler({.temperature = 0.8f, .repetition_penalty = 1.1f}).draws_from_logits_alone());
  EXPECT_FALSE(Sampler({.temperature = 0.8f, .presence_penalty = 0.5f}).draws_from_logits_alone());
  EXPECT_FALSE(Sampler({.frequency_penalty = -0.5f}).draws_from_logits_alone());
  EXPECT_TRUE(Sampler({.temperature = 0.0f}).shape().greedy());
  const SampleShape shape =
      Sampler({.temperature = 0.7f, .top_k = 3, .top_p = 0.5f, .min_p = 0.2f}).shape();
  EXPECT_EQ(shape.temperature, 0.7f);
  EXPECT_EQ(shape.top_k, 3);
  EXPECT_EQ(shape.top_p, 0.5f);
  EXPECT_EQ(shape.min_p, 0.2f);
  EXPECT_TRUE(shape.filtered());
  EXPECT_FALSE(Sampler({.temperature = 0.7f}).shape().filtered());
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
  EXPECT_THROW(Sampler({.top_k = -2}), Error);
  EXPECT_THROW(Sampler({.presence_penalty = 2.5f}), Error);
  EXPECT_THROW(Sampler({.frequency_penalty = -3.0f}), Error);
  EXPECT_NO_THROW(Sampler({.top_k = -1}));  // vLLM's spelling of "off"
  EXPECT_EQ(Sampler({.temperature = 1.0f, .top_k = -1}).shape().top_k, 0);
}

// OpenAI's penalties, over the generated tokens: minus frequency x count, minus presence once.
TEST(Sampler, PresenceAndFrequencyPenaltiesAsOpenAI) {
  const std::vector<float> logits = {1.0f, 1.2f, 1.1f, 0.0f};
  const std::vector<int32_t> history = {0, 1, 1};
  // Token 1 was generated twice: 1.2 - 2 * 0.1 - 0.0 = 1.0; token 2 (1.1) now wins.
  EXPECT_EQ(Sampler({.frequency_penalty = 0.1f}).sample(logits, history, history).id, 2);
  // Presence alone: 1.2 - 0.15 = 1.05 < 1.1.
  EXPECT_EQ(Sampler({.presence_penalty = 0.15f}).sample(logits, history, history).id, 2);
  // Tokens of the prompt only (not generated) are not penalized.
  EXPECT_EQ(Sampler({.presence_penalty = 0.15f}).sample(logits, history, {}).id, 1);
  // A negative penalty encourages repeats: token 0 (1.0 + 0.3) wins.
  EXPECT_EQ(
      Sampler({.presence_penalty = -0.3f}).sample(logits, history, std::vector<int32_t>{0}).id, 0);
}

}  // namespace
}  // namespace fp8llm
