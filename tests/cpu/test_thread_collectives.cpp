// The in-process collectives and the rank threads of tensor parallelism on the CPU: sums in rank
// order whichever thread arrives first, exact maxima of amax patterns, gathers, and a failing rank
// that wakes the others instead of leaving them waiting.
#include "backend/cpu/thread_collectives.h"

#include <gtest/gtest.h>

#include <bit>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/rank_threads.h"
#include "test_util.h"

namespace fp8llm {
namespace {

constexpr int64_t kN = 1001;

// Values whose sum depends on the order they are added in.
std::vector<float> values_of(int rank) {
  std::mt19937 rng(static_cast<uint32_t>(rank + 1));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(kN);
  for (float& x : v) x = u(rng) * static_cast<float>(1 << (rank * 7 % 23));
  return v;
}

TEST(ThreadCollectives, SumsInRankOrderOnEveryRank) {
  for (const int ranks : {1, 2, 3, 4}) {
    ThreadCollectives group(ranks);
    RankThreads threads(ranks);
    std::vector<std::vector<float>> data(static_cast<size_t>(ranks));
    for (int run = 0; run < 5; ++run) {
      for (int r = 0; r < ranks; ++r) data[static_cast<size_t>(r)] = values_of(r);
      threads.run([&](int r) {
        // Ranks arrive in a different order each run.
        if ((r + run) % 2 == 0) std::this_thread::yield();
        group.rank(r).all_reduce_sum(data[static_cast<size_t>(r)].data(), kN);
      });
      for (int64_t i = 0; i < kN; ++i) {
        float want = values_of(0)[static_cast<size_t>(i)];
        for (int r = 1; r < ranks; ++r) want += values_of(r)[static_cast<size_t>(i)];
        for (int r = 0; r < ranks; ++r) {
          ASSERT_EQ(std::bit_cast<uint32_t>(data[static_cast<size_t>(r)][static_cast<size_t>(i)]),
                    std::bit_cast<uint32_t>(want))
              << ranks << " ranks, run " << run << ", rank " << r << ", element " << i;
        }
      }
    }
  }
}

TEST(ThreadCollectives, MaxOfAmaxPatternsAndGather) {
  const int ranks = 3;
  ThreadCollectives group(ranks);
  RankThreads threads(ranks);
  // NaN (0x7FC00000) above infinity (0x7F800000) above finite values, as max_abs_bits orders them.
  const std::vector<std::vector<uint32_t>> amax = {
      {0x3F800000, 0, 0x7F800000, 1}, {0x40000000, 0, 0x7FC00000, 0}, {0x3F000000, 5, 0, 0}};
  std::vector<std::vector<uint32_t>> reduced = amax;
  std::vector<std::vector<float>> gathered(ranks, std::vector<float>(3 * 2));
  threads.run([&](int r) {
    group.rank(r).all_reduce_max(reduced[static_cast<size_t>(r)].data(), 4);
    const std::vector<float> local = {static_cast<float>(r), static_cast<float>(10 * r)};
    group.rank(r).all_gather(local.data(), 2, gathered[static_cast<size_t>(r)].data());
  });
  for (int r = 0; r < ranks; ++r) {
    EXPECT_EQ(reduced[static_cast<size_t>(r)],
              (std::vector<uint32_t>{0x40000000, 5, 0x7FC00000, 1}));
    EXPECT_EQ(gathered[static_cast<size_t>(r)], (std::vector<float>{0, 0, 1, 10, 2, 20}));
  }
}

TEST(ThreadCollectives, AFailingRankWakesTheOthersAndTheGroupIsUsableAfter) {
  const int ranks = 4;
  ThreadCollectives group(ranks);
  RankThreads threads(ranks);
  std::vector<std::vector<float>> data(ranks, std::vector<float>(8, 1.0f));
  // Rank 2 fails before the collective the others wait in; its error is the one reported.
  const std::string error = test::error_of([&] {
    threads.run(
        [&](int r) {
          if (r == 2) throw Error("rank 2 failed");
          group.rank(r).all_reduce_sum(data[static_cast<size_t>(r)].data(), 8);
        },
        [&] { group.abort(); });
  });
  EXPECT_EQ(error, "rank 2 failed");
  group.reset();
  threads.run([&](int r) { group.rank(r).all_reduce_sum(data[static_cast<size_t>(r)].data(), 8); });
  for (const auto& d : data) EXPECT_EQ(d, std::vector<float>(8, 4.0f));
  // Another exception type is passed on as it is.
  EXPECT_THROW(threads.run(
                   [&](int r) {
                     if (r == 0) throw std::logic_error("bug");
                     group.rank(r).all_reduce_sum(data[static_cast<size_t>(r)].data(), 8);
                   },
                   [&] { group.abort(); }),
               std::logic_error);
}

}  // namespace
}  // namespace fp8llm
