// Causal grouped-query attention against a direct double-precision version, plus the properties
// the engine relies on: causality, the query-head -> KV-head mapping, and that attending token by
// token with a growing cache gives what attending to all tokens at once gives.
#include "backend/cpu/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace fp8llm::cpu {
namespace {

struct Problem {
  int64_t t, heads, kv_heads, head_dim, past;
  std::vector<float> q;     // [t, heads, head_dim]
  std::vector<float> k, v;  // [past + t, kv_heads, head_dim]

  Problem(int64_t t_, int64_t heads_, int64_t kv_heads_, int64_t head_dim_, int64_t past_,
          uint32_t seed)
      : t(t_), heads(heads_), kv_heads(kv_heads_), head_dim(head_dim_), past(past_) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    q.resize(t * heads * head_dim);
    k.resize((past + t) * kv_heads * head_dim);
    v.resize(k.size());
    // Queries scaled up so that the softmax is far from uniform.
    for (float& x : q) x = 3.0f * dist(rng);
    for (float& x : k) x = dist(rng);
    for (float& x : v) x = dist(rng);
  }

  std::vector<float> run() const {
    std::vector<float> out(q.size(), NAN);
    attention(q.data(), t, heads, kv_heads, head_dim, k.data(), v.data(), past, out.data());
    return out;
  }

  // Written out directly: scores, max-shifted softmax and weighted sum, all in double.
  std::vector<double> naive() const {
    std::vector<double> out(q.size());
    const int64_t group = heads / kv_heads;
    for (int64_t i = 0; i < t; ++i) {
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t g = h / group;
        const float* qh = &q[(i * heads + h) * head_dim];
        std::vector<double> s(past + i + 1);
        double m = -INFINITY;
        for (int64_t j = 0; j <= past + i; ++j) {
          const float* kj = &k[(j * kv_heads + g) * head_dim];
          double dot = 0;
          for (int64_t d = 0; d < head_dim; ++d) dot += double{qh[d]} * kj[d];
          s[j] = dot / std::sqrt(double(head_dim));
          m = std::max(m, s[j]);
        }
        double z = 0;
        for (double& x : s) z += (x = std::exp(x - m));
        for (int64_t d = 0; d < head_dim; ++d) {
          double acc = 0;
          for (int64_t j = 0; j <= past + i; ++j)
            acc += s[j] * v[(j * kv_heads + g) * head_dim + d];
          out[(i * heads + h) * head_dim + d] = acc / z;
        }
      }
    }
    return out;
  }
};

// Largest |a - e| / |e|, with |e| floored at 1e-3 of the data's largest entry so that an output
// that happens to cancel to nearly zero is judged against the scale of the data.
double max_rel_err(const std::vector<float>& a, const std::vector<double>& e) {
  double scale = 0;
  for (double x : e) scale = std::max(scale, std::abs(x));
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a[i] - e[i]) / std::max(std::abs(e[i]), 1e-3 * scale));
  return worst;
}

TEST(Attention, MatchesTheFormulaWithGroupedQueries) {
  const Problem p(7, 6, 2, 16, 5, 1);
  EXPECT_LT(max_rel_err(p.run(), p.naive()), 1e-6);
}

TEST(Attention, MatchesTheFormulaForOneTokenAndForEqualHeadCounts) {
  const Problem decode(1, 4, 1, 128, 40, 2);  // qwen3-like: one KV head, head_dim 128
  EXPECT_LT(max_rel_err(decode.run(), decode.naive()), 1e-6);
  const Problem mha(5, 3, 3, 64, 0, 3);  // no grouping, empty cache before
  EXPECT_LT(max_rel_err(mha.run(), mha.naive()), 1e-6);
}

TEST(Attention, LongPromptAcrossThreads) {
  // Enough work for several chunks; odd and even token counts exercise the balanced ordering.
  for (const int64_t t : {160, 161}) {
    const Problem p(t, 4, 2, 64, 3, 4);
    EXPECT_LT(max_rel_err(p.run(), p.naive()), 1e-6) << t;
  }
}

TEST(Attention, FirstTokenOfAnEmptyCacheReturnsItsValue) {
  // Attending to one position: softmax weight 1, so the output is exactly v[0].
  const Problem p(1, 2, 1, 8, 0, 5);
  const auto out = p.run();
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t d = 0; d < 8; ++d) EXPECT_EQ(out[h * 8 + d], p.v[d]);
}

TEST(Attention, IsCausal) {
  Problem p(8, 4, 2, 32, 0, 6);
  const auto before = p.run();
  // Change the key and value of position 5 (both KV heads).
  for (int64_t i = 0; i < 2 * 32; ++i) {
    p.k[5 * 2 * 32 + i] += 1.5f;
    p.v[5 * 2 * 32 + i] -= 2.0f;
  }
  const auto after = p.run();
  const int64_t row = 4 * 32;
  for (int64_t i = 0; i < 5 * row; ++i) ASSERT_EQ(before[i], after[i]) << "token " << i / row;
  for (int64_t tok = 5; tok < 8; ++tok) {
    bool changed = false;
    for (int64_t i = tok * row; i < (tok + 1) * row; ++i) changed |= before[i] != after[i];
    EXPECT_TRUE(changed) << "token " << tok << " ignores position 5";
  }
}

TEST(Attention, QueryHeadsShareTheirGroupsKvHead) {
  // 8 query heads over 4 KV heads: heads 2g and 2g+1 read KV head g. Every value of KV head g is
  // g + 1, so whatever the weights, head h must return h / 2 + 1.
  Problem p(3, 8, 4, 16, 2, 7);
  for (int64_t pos = 0; pos < 5; ++pos)
    for (int64_t g = 0; g < 4; ++g)
      for (int64_t d = 0; d < 16; ++d) p.v[(pos * 4 + g) * 16 + d] = static_cast<float>(g + 1);
  const auto out = p.run();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t h = 0; h < 8; ++h)
      for (int64_t d = 0; d < 16; ++d)
        EXPECT_FLOAT_EQ(out[(i * 8 + h) * 16 + d], static_cast<float>(h / 2 + 1))
            << "token " << i << " head " << h;
}

TEST(Attention, TokenByTokenEqualsAllAtOnce) {
  const int64_t t = 9, heads = 4, kv_heads = 2, head_dim = 32;
  const Problem p(t, heads, kv_heads, head_dim, 0, 8);
  const auto at_once = p.run();
  std::vector<float> step(p.q.size());
  for (int64_t i = 0; i < t; ++i) {
    // The cache holds positions 0 .. i; the query is token i alone with past = i.
    attention(p.q.data() + i * heads * head_dim, 1, heads, kv_heads, head_dim, p.k.data(),
              p.v.data(), i, step.data() + i * heads * head_dim);
  }
  std::vector<double> expected(at_once.begin(), at_once.end());
  EXPECT_LT(max_rel_err(step, expected), 1e-6);
  // A prompt split in two chunks (4 then 5 tokens) agrees too.
  std::vector<float> chunks(p.q.size());
  attention(p.q.data(), 4, heads, kv_heads, head_dim, p.k.data(), p.v.data(), 0, chunks.data());
  attention(p.q.data() + 4 * heads * head_dim, 5, heads, kv_heads, head_dim, p.k.data(), p.v.data(),
            4, chunks.data() + 4 * heads * head_dim);
  EXPECT_LT(max_rel_err(chunks, expected), 1e-6);
}

TEST(Attention, OutMayBeQ) {
  Problem p(6, 4, 2, 16, 3, 9);
  const auto separate = p.run();
  attention(p.q.data(), p.t, p.heads, p.kv_heads, p.head_dim, p.k.data(), p.v.data(), p.past,
            p.q.data());
  EXPECT_EQ(p.q, separate);
}

TEST(Attention, HeadsMustBeAMultipleOfKvHeads) {
  const Problem p(1, 6, 4, 8, 0, 10);
  std::vector<float> out(p.q.size());
  try {
    attention(p.q.data(), 1, 6, 4, 8, p.k.data(), p.v.data(), 0, out.data());
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of kv_heads"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fp8llm::cpu
