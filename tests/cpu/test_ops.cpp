// Embedding, RMSNorm, SiLU-gating, residual add and the logits helpers against direct
// double-precision formulas written out here.
#include "backend/cpu/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "test_util.h"

namespace fp8llm::cpu {
namespace {

std::vector<float> normal(size_t n, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
  return out;
}

// Largest |actual - expected| / |expected| over the elements.
double max_rel_err(const std::vector<float>& actual, const std::vector<double>& expected) {
  EXPECT_EQ(actual.size(), expected.size());
  double worst = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double err = std::abs(actual[i] - expected[i]);
    worst = std::max(worst, expected[i] == 0 ? err : err / std::abs(expected[i]));
  }
  return worst;
}

// --- embedding_lookup --------------------------------------------------------------------------

TEST(Embedding, CopiesTheRowsOfTheIdsFromABf16Table) {
  const int64_t vocab = 50, hidden = 24;
  const auto table = to_bf16(normal(vocab * hidden, 1.0f, 1));
  const std::vector<int32_t> ids = {7, 0, 49, 7, 13};
  std::vector<float> out(ids.size() * hidden, -1.0f);
  embedding_lookup(table.data(), vocab, hidden, ids, out.data());
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t j = 0; j < hidden; ++j)
      ASSERT_EQ(out[t * hidden + j], bf16_to_f32(table[ids[t] * hidden + j])) << t << "," << j;
}

TEST(Embedding, CopiesTheRowsOfTheIdsFromAnF32Table) {
  const int64_t vocab = 9, hidden = 5;
  const auto table = normal(vocab * hidden, 1.0f, 2);
  const std::vector<int32_t> ids = {8, 3};
  std::vector<float> out(ids.size() * hidden);
  embedding_lookup(table.data(), vocab, hidden, ids, out.data());
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t j = 0; j < hidden; ++j) ASSERT_EQ(out[t * hidden + j], table[ids[t] * hidden + j]);
}

TEST(Embedding, ManyTokensAcrossThreads) {
  const int64_t vocab = 300, hidden = 256;
  const auto table = to_bf16(normal(vocab * hidden, 1.0f, 3));
  std::vector<int32_t> ids(500);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37) % vocab);
  std::vector<float> out(ids.size() * hidden);
  embedding_lookup(table.data(), vocab, hidden, ids, out.data());
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t j = 0; j < hidden; ++j)
      ASSERT_EQ(out[t * hidden + j], bf16_to_f32(table[ids[t] * hidden + j]));
}

void expect_out_of_range(int32_t bad_id) {
  const int64_t vocab = 1024, hidden = 4;
  const std::vector<uint16_t> table(vocab * hidden, f32_to_bf16(1.0f));
  const std::vector<int32_t> ids = {1, bad_id, 2};
  std::vector<float> out(ids.size() * hidden, -7.0f);
  try {
    embedding_lookup(table.data(), vocab, hidden, ids, out.data());
    FAIL() << "no error for id " << bad_id;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("token id " + std::to_string(bad_id)), std::string::npos) << msg;
    EXPECT_NE(msg.find("1024"), std::string::npos) << msg;
  }
  for (float v : out) EXPECT_EQ(v, -7.0f) << "output written before the ids were checked";
}

TEST(Embedding, IdPastTheVocabularyIsAnError) {
  expect_out_of_range(1024);
}
TEST(Embedding, NegativeIdIsAnError) {
  expect_out_of_range(-3);
}

TEST(Embedding, F32TableChecksIdsToo) {
  const std::vector<float> table(8, 0.0f);
  const std::vector<int32_t> ids = {4};
  std::vector<float> out(2);
  EXPECT_THROW(embedding_lookup(table.data(), 4, 2, ids, out.data()), Error);
}

// --- rms_norm ----------------------------------------------------------------------------------

std::vector<double> naive_rms_norm(const std::vector<float>& x, int64_t rows, int64_t dim,
                                   const std::vector<double>& weight, double eps) {
  std::vector<double> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double mean_sq = 0;
    for (int64_t d = 0; d < dim; ++d) mean_sq += double{x[r * dim + d]} * x[r * dim + d];
    mean_sq /= dim;
    const double scale = 1.0 / std::sqrt(mean_sq + eps);
    for (int64_t d = 0; d < dim; ++d) out[r * dim + d] = weight[d] * x[r * dim + d] * scale;
  }
  return out;
}

TEST(RmsNorm, MatchesTheFormulaWithBf16Weight) {
  const int64_t rows = 37, dim = 256;
  const auto x = normal(rows * dim, 2.0f, 4);
  // Norm weights like the fixtures': 1 + 0.2 N(0, 1).
  auto w = normal(dim, 0.2f, 5);
  for (float& v : w) v += 1.0f;
  const auto w_bf16 = to_bf16(w);
  std::vector<double> w_exact(dim);
  for (int64_t d = 0; d < dim; ++d) w_exact[d] = bf16_to_f32(w_bf16[d]);

  std::vector<float> out(x.size());
  rms_norm(x.data(), rows, dim, w_bf16.data(), 1e-5f, out.data());
  // eps as the float32 value transformers adds.
  EXPECT_LT(max_rel_err(out, naive_rms_norm(x, rows, dim, w_exact, double{1e-5f})), 1e-6);
}

TEST(RmsNorm, MatchesTheFormulaWithF32Weight) {
  const int64_t rows = 3, dim = 200;
  const auto x = normal(rows * dim, 0.5f, 6);
  const auto w = normal(dim, 1.0f, 7);
  const std::vector<double> w_exact(w.begin(), w.end());
  std::vector<float> out(x.size());
  rms_norm(x.data(), rows, dim, w.data(), 1e-6f, out.data());
  EXPECT_LT(max_rel_err(out, naive_rms_norm(x, rows, dim, w_exact, double{1e-6f})), 1e-6);
}

TEST(RmsNorm, EpsMattersForSmallRows) {
  // mean(x^2) = 1e-6: eps = 1e-5 dominates, so dropping or misplacing it changes the result.
  const int64_t dim = 4;
  const std::vector<float> x = {1e-3f, -1e-3f, 1e-3f, -1e-3f};
  const std::vector<float> w(dim, 1.0f);
  std::vector<float> out(dim);
  rms_norm(x.data(), 1, dim, w.data(), 1e-5f, out.data());
  const double expected = 1e-3 / std::sqrt(1e-6 + double{1e-5f});
  EXPECT_NEAR(out[0], expected, 1e-6 * expected);
  EXPECT_NEAR(out[1], -expected, 1e-6 * expected);
}

TEST(RmsNorm, InPlaceGivesTheSameResult) {
  const int64_t rows = 64, dim = 512;  // large enough to be split across threads
  auto x = normal(rows * dim, 1.0f, 8);
  const auto w = to_bf16(normal(dim, 1.0f, 9));
  std::vector<float> out(x.size());
  rms_norm(x.data(), rows, dim, w.data(), 1e-6f, out.data());
  rms_norm(x.data(), rows, dim, w.data(), 1e-6f, x.data());
  EXPECT_EQ(x, out);
}

TEST(RmsNorm, PerHeadNormOfQwen3QueriesIsRowsOfHeadDim) {
  // q [T, H, D] normalized over D for every (token, head) with one shared [D] weight.
  const int64_t tokens = 5, heads = 4, head_dim = 128;
  const auto q = normal(tokens * heads * head_dim, 1.5f, 10);
  const auto w = to_bf16(normal(head_dim, 1.0f, 11));
  std::vector<double> w_exact(head_dim);
  for (int64_t d = 0; d < head_dim; ++d) w_exact[d] = bf16_to_f32(w[d]);
  std::vector<float> out(q.size());
  rms_norm(q.data(), tokens * heads, head_dim, w.data(), 1e-6f, out.data());
  std::vector<double> expected(q.size());
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const size_t off = static_cast<size_t>((t * heads + h) * head_dim);
      std::vector<float> head(q.begin() + off, q.begin() + off + head_dim);
      const auto one = naive_rms_norm(head, 1, head_dim, w_exact, double{1e-6f});
      std::copy(one.begin(), one.end(), expected.begin() + off);
    }
  }
  EXPECT_LT(max_rel_err(out, expected), 1e-6);
}

// --- silu_mul, add_inplace ---------------------------------------------------------------------

TEST(SiluMul, MatchesTheFormula) {
  const int64_t n = 100000;  // split across threads
  const auto gate = normal(n, 4.0f, 12);
  const auto up = normal(n, 1.0f, 13);
  std::vector<float> out(n);
  silu_mul(gate.data(), up.data(), n, out.data());
  std::vector<double> expected(n);
  for (int64_t i = 0; i < n; ++i)
    expected[i] = gate[i] / (1.0 + std::exp(-double{gate[i]})) * up[i];
  EXPECT_LT(max_rel_err(out, expected), 1e-6);
}

TEST(SiluMul, ExtremeGates) {
  const std::vector<float> gate = {0.0f, 100.0f, -100.0f, -20.0f, 20.0f};
  const std::vector<float> up(gate.size(), 2.0f);
  std::vector<float> out(gate.size());
  silu_mul(gate.data(), up.data(), static_cast<int64_t>(gate.size()), out.data());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 200.0f);
  // exp(100) overflows float32: torch's silu gives -0 there, and so do we.
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_NEAR(out[3], -20.0 / (1.0 + std::exp(20.0)) * 2.0, 1e-6 * 20.0 / std::exp(20.0) * 2.0);
  EXPECT_NEAR(out[4], 20.0 / (1.0 + std::exp(-20.0)) * 2.0, 1e-6 * 40.0);
}

TEST(SiluMul, OutMayBeTheGate) {
  auto gate = normal(1000, 2.0f, 14);
  const auto up = normal(1000, 1.0f, 15);
  std::vector<float> out(gate.size());
  silu_mul(gate.data(), up.data(), 1000, out.data());
  silu_mul(gate.data(), up.data(), 1000, gate.data());
  EXPECT_EQ(gate, out);
}

TEST(AddInplace, AddsElementwise) {
  const int64_t n = 300000;  // split across threads
  auto x = normal(n, 1.0f, 16);
  const auto y = normal(n, 1.0f, 17);
  const auto x0 = x;
  add_inplace(x.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[i], x0[i] + y[i]) << i;
}

// --- argmax, log_softmax -----------------------------------------------------------------------

TEST(Argmax, FindsTheLargest) {
  const auto x = normal(5000, 3.0f, 18);
  int64_t best = 0;
  for (int64_t i = 1; i < 5000; ++i)
    if (x[i] > x[best]) best = i;
  EXPECT_EQ(argmax(x.data(), 5000), best);
}

TEST(Argmax, FirstOnTiesAndNegativeRows) {
  const std::vector<float> x = {-5.0f, -1.0f, -3.0f, -1.0f};
  EXPECT_EQ(argmax(x.data(), 4), 1);
  const std::vector<float> single = {-INFINITY};
  EXPECT_EQ(argmax(single.data(), 1), 0);
}

TEST(Argmax, NanCountsAsLargestLikeTorch) {
  const std::vector<float> x = {1.0f, 9.0f, NAN, 10.0f, NAN};
  EXPECT_EQ(argmax(x.data(), 5), 2);
}

TEST(Argmax, EmptyRowIsAnError) {
  try {
    argmax(nullptr, 0);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
}

TEST(LogSoftmax, MatchesTheFormula) {
  const int64_t n = 1024;
  const auto x = normal(n, 5.0f, 19);
  std::vector<float> out(n);
  log_softmax(x.data(), n, out.data());
  double sum = 0;
  for (float v : x) sum += std::exp(double{v});
  std::vector<double> expected(n);
  for (int64_t i = 0; i < n; ++i) expected[i] = x[i] - std::log(sum);
  EXPECT_LT(max_rel_err(out, expected), 1e-6);
}

TEST(LogSoftmax, StableForHugeLogitsAndKeepsMaskedOnes) {
  const std::vector<float> x = {1000.0f, 999.0f, -INFINITY, 0.0f};
  std::vector<float> out(x.size());
  log_softmax(x.data(), 4, out.data());
  // Around the maximum: log(1 + e^-1 + e^-1000).
  const double lse = std::log1p(std::exp(-1.0));
  EXPECT_NEAR(out[0], -lse, 1e-6 * lse);
  EXPECT_NEAR(out[1], -1.0 - lse, 1e-6);
  EXPECT_EQ(out[2], -INFINITY);
  EXPECT_NEAR(out[3], -1000.0 - lse, 1e-6 * 1000);
}

TEST(LogSoftmax, InPlace) {
  auto x = normal(300, 2.0f, 20);
  std::vector<float> out(x.size());
  log_softmax(x.data(), 300, out.data());
  log_softmax(x.data(), 300, x.data());
  EXPECT_EQ(x, out);
}

}  // namespace
}  // namespace fp8llm::cpu
