// Greedy picks and draws at a temperature, each row cut into pieces (kernels/token_pick.h): the
// greedy pick equals the host's top_token on rows of 1 to 300,000 logits (ties across pieces,
// pieces of -inf, rows given out of order), and every draw equals the sampling definition
// (tests/sampling_reference.h) except within float rounding of a boundary between two tokens.
// Also prints the time per launch (not a bound). Skipped without a GPU.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "backend/cuda/kernels/token_pick.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "model/top_token.h"
#include "sampling_reference.h"

namespace fp8llm::cuda {
namespace {

class TokenPick : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// A trained model's shape (a few likely tokens, a long tail) with ties on a 1/64 grid.
std::vector<float> peaked_row(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 1.5f);
  std::vector<float> row(n);
  for (float& v : row) v = std::round(noise(rng) * 64.0f) / 64.0f;
  for (size_t i = 0; i < 12; ++i) row[i * 7919 % n] = 9.0f - 0.25f * static_cast<float>(i / 2);
  return row;
}

struct Picks {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
};

// Runs the greedy pick (temperatures empty) or the draws over rows[i] of `logits` [rows, n].
Picks run(const std::vector<float>& logits, int64_t n, const std::vector<int32_t>& rows,
          const std::vector<float>& temperatures = {}, const std::vector<double>& uniforms = {}) {
  const auto count = static_cast<int64_t>(rows.size());
  const DeviceBuffer d_logits = to_device(logits);
  const DeviceBuffer d_rows = to_device(rows);
  DeviceBuffer ids(rows.size() * sizeof(int32_t));
  DeviceBuffer logprobs(rows.size() * sizeof(float));
  DeviceBuffer scratch(std::max<size_t>(1, token_pick_scratch_bytes(n, count)));
  if (temperatures.empty()) {
    launch_top_tokens(d_logits.as<float>(), n, d_rows.as<int32_t>(), count, ids.as<int32_t>(),
                      logprobs.as<float>(), scratch.data(), nullptr);
  } else {
    const DeviceBuffer d_temps = to_device(temperatures);
    const DeviceBuffer d_uniforms = to_device(uniforms);
    launch_sample_tokens(d_logits.as<float>(), n, d_rows.as<int32_t>(), d_temps.as<float>(),
                         d_uniforms.as<double>(), count, ids.as<int32_t>(), logprobs.as<float>(),
                         scratch.data(), nullptr);
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  return {to_host<int32_t>(ids, rows.size()), to_host<float>(logprobs, rows.size())};
}

std::span<const float> row_span(const std::vector<float>& logits, int64_t n, int32_t row) {
  return std::span<const float>(logits).subspan(static_cast<size_t>(row * n),
                                                static_cast<size_t>(n));
}

TEST_F(TokenPick, GreedyEqualsTheHostOnRowsOfAnyLength) {
  for (const int64_t n : {1, 7, 255, 256, 4095, 4096, 4097, 8195, 128256, 262143, 300000}) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    const int rows = 3;
    std::vector<float> logits;
    for (int r = 0; r < rows; ++r) {
      const std::vector<float> row = peaked_row(static_cast<size_t>(n), 5 + r);
      logits.insert(logits.end(), row.begin(), row.end());
    }
    const Picks picks = run(logits, n, {2, 0, 1});
    const int32_t order[] = {2, 0, 1};
    for (int i = 0; i < rows; ++i) {
      const TopToken want = top_token(row_span(logits, n, order[i]));
      EXPECT_EQ(picks.ids[i], want.id) << "pick " << i;
      EXPECT_NEAR(picks.logprobs[i], want.logprob, 1e-5) << "pick " << i;
    }
  }
}

TEST_F(TokenPick, GreedyTiesAcrossPiecesAndPiecesOfMinusInfinity) {
  const int64_t n = 128256;
  std::vector<float> logits(3 * n, -std::numeric_limits<float>::infinity());
  // Row 0: equal largest values in three pieces far apart: the first index wins.
  std::vector<float> row0 = peaked_row(n, 1);
  row0[100000] = row0[70000] = row0[9000] = 20.0f;
  std::copy(row0.begin(), row0.end(), logits.begin());
  // Row 1: only the last few thousand logits are finite (masked pieces before them).
  for (int64_t i = n - 3000; i < n; ++i) logits[n + i] = static_cast<float>(i % 97) * 0.01f;
  // Row 2: one +inf; the pick is its index.
  std::vector<float> row2 = peaked_row(n, 2);
  row2[55555] = std::numeric_limits<float>::infinity();
  std::copy(row2.begin(), row2.end(), logits.begin() + 2 * n);
  const Picks picks = run(logits, n, {0, 1, 2});
  EXPECT_EQ(picks.ids[0], 9000);
  EXPECT_NEAR(picks.logprobs[0], log_softmax_at(row_span(logits, n, 0), 9000), 1e-5);
  const TopToken masked = top_token(row_span(logits, n, 1));
  EXPECT_EQ(picks.ids[1], masked.id);
  EXPECT_NEAR(picks.logprobs[1], masked.logprob, 1e-5);
  EXPECT_EQ(picks.ids[2], 55555);
}

// A row of NaN logits still gives an index inside the row (the engine's checks report the NaN).
TEST_F(TokenPick, NanRowsGiveAnIndexInTheRow) {
  const int64_t n = 10000;
  std::vector<float> logits = peaked_row(n, 3);
  for (int64_t i = 0; i < n; i += 3) logits[i] = std::numeric_limits<float>::quiet_NaN();
  const Picks greedy = run(logits, n, {0});
  EXPECT_GE(greedy.ids[0], 0);
  EXPECT_LT(greedy.ids[0], n);
  const Picks drawn = run(logits, n, {0}, {1.0f}, {0.5});
  EXPECT_GE(drawn.ids[0], 0);
  EXPECT_LT(drawn.ids[0], n);
}

TEST_F(TokenPick, DrawsEqualTheDefinition) {
  int compared = 0;
  for (const int64_t n : {1, 7, 5000, 128256, 300000}) {
    const std::vector<float> logits = peaked_row(static_cast<size_t>(n), 9);
    for (const float temperature : {0.5f, 1.0f, 2.0f}) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " T " << temperature);
      const test::KeptTokens kept = test::reference_kept(logits, temperature, 0, 1.0f, 0.0f);
      const int draws = 48;
      std::vector<double> uniforms(draws);
      for (int k = 0; k < draws; ++k) uniforms[k] = (k + 0.37) / draws;
      const Picks picks = run(logits, n, std::vector<int32_t>(draws, 0),
                              std::vector<float>(draws, temperature), uniforms);
      for (int k = 0; k < draws; ++k) {
        ASSERT_GE(picks.ids[k], 0);
        ASSERT_LT(picks.ids[k], n);
        EXPECT_NEAR(picks.logprobs[k], log_softmax_at(logits, picks.ids[k]), 1e-5);
        const double r = uniforms[k] * kept.total;
        if (kept.near_boundary(r, 1e-6)) continue;
        ++compared;
        EXPECT_EQ(picks.ids[k], kept.pick(r)) << "u " << uniforms[k];
      }
    }
  }
  EXPECT_GT(compared, 500);
}

// Masked pieces (-inf) before and between the finite logits, and uniforms next to 1.
TEST_F(TokenPick, DrawsSkipMaskedPieces) {
  const int64_t n = 128256;
  std::vector<float> logits(n, -std::numeric_limits<float>::infinity());
  for (int64_t i = 20000; i < 20100; ++i) logits[i] = static_cast<float>(i % 7) * 0.3f;
  for (int64_t i = 90000; i < 90050; ++i) logits[i] = static_cast<float>(i % 5) * 0.2f;
  const test::KeptTokens kept = test::reference_kept(logits, 1.0f, 0, 1.0f, 0.0f);
  const std::vector<double> uniforms = {0.0, 0.3, 0.6, 0.66, 0.9, 0.999999, 1.0 - 1e-16};
  const Picks picks = run(logits, n, std::vector<int32_t>(uniforms.size(), 0),
                          std::vector<float>(uniforms.size(), 1.0f), uniforms);
  for (size_t k = 0; k < uniforms.size(); ++k) {
    SCOPED_TRACE(::testing::Message() << "u " << uniforms[k]);
    const bool finite = (picks.ids[k] >= 20000 && picks.ids[k] < 20100) ||
                        (picks.ids[k] >= 90000 && picks.ids[k] < 90050);
    EXPECT_TRUE(finite) << picks.ids[k];
    const double r = uniforms[k] * kept.total;
    if (!kept.near_boundary(r, 1e-6)) {
      EXPECT_EQ(picks.ids[k], kept.pick(r));
    }
  }
}

// Time per launch pair on Llama-3-sized rows (printed for docs/PERFORMANCE.md; not a bound).
TEST_F(TokenPick, TimePerLaunch) {
  const int64_t n = 128256;
  for (const int rows : {1, 256}) {
    std::vector<float> logits;
    for (int r = 0; r < rows; ++r) {
      const std::vector<float> row = peaked_row(static_cast<size_t>(n), r);
      logits.insert(logits.end(), row.begin(), row.end());
    }
    std::vector<int32_t> row_ids(rows);
    for (int r = 0; r < rows; ++r) row_ids[r] = r;
    const DeviceBuffer d_logits = to_device(logits);
    const DeviceBuffer d_rows = to_device(row_ids);
    const DeviceBuffer d_temps = to_device(std::vector<float>(rows, 0.8f));
    const DeviceBuffer d_uniforms = to_device(std::vector<double>(rows, 0.5));
    DeviceBuffer out(rows * 2 * sizeof(float));
    DeviceBuffer scratch(token_pick_scratch_bytes(n, rows));
    const auto time = [&](bool draw) {
      const auto once = [&] {
        if (draw) {
          launch_sample_tokens(d_logits.as<float>(), n, d_rows.as<int32_t>(), d_temps.as<float>(),
                               d_uniforms.as<double>(), rows, out.as<int32_t>(),
                               out.as<float>() + rows, scratch.data(), nullptr);
        } else {
          launch_top_tokens(d_logits.as<float>(), n, d_rows.as<int32_t>(), rows, out.as<int32_t>(),
                            out.as<float>() + rows, scratch.data(), nullptr);
        }
      };
      once();
      CUDA_CHECK(cudaDeviceSynchronize());
      const int reps = 100;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) once();
      CUDA_CHECK(cudaDeviceSynchronize());
      return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                 .count() /
             reps;
    };
    std::printf("token pick, %d row(s) of %lld: greedy %.1f us, draw %.1f us per launch pair\n",
                rows, static_cast<long long>(n), time(false), time(true));
  }
}

}  // namespace
}  // namespace fp8llm::cuda
