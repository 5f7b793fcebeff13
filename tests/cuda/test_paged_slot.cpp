// The attention kernels' slot lookup (kernels/paged_slot.cuh) against the 64-bit arithmetic it
// replaced, for every block size the CLI takes. Runs on the host; needs no GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "backend/cuda/kernels/paged_slot.cuh"

namespace fp8llm::cuda::detail {
namespace {

TEST(PagedSlot, EqualsDivisionAndRemainderForEveryBlockSize) {
  std::mt19937 rng(7);
  for (int64_t block_size = 1; block_size <= 1024; ++block_size) {
    const int64_t keys = block_size * 37 + 5;
    std::vector<int32_t> table((keys + block_size - 1) / block_size);
    for (int32_t& b : table) b = static_cast<int32_t>(rng() % 100000);
    const PagedSlot slot_of(block_size);
    for (int64_t key = 0; key < keys; ++key) {
      const int64_t expected =
          static_cast<int64_t>(table[key / block_size]) * block_size + key % block_size;
      ASSERT_EQ(slot_of(table.data(), key), expected) << "block size " << block_size;
      // The two-step form the decode kernel uses to load the entry a round early.
      ASSERT_EQ(slot_of.entry(key), static_cast<uint32_t>(key / block_size));
      ASSERT_EQ(slot_of.slot(table[slot_of.entry(key)], key), expected);
    }
  }
}

TEST(PagedSlot, HoldsForKeysNearTwoToThe31) {
  // The largest context the arithmetic is written for: keys just below 2^31 (large blocks keep
  // the table a few MiB).
  for (const int64_t block_size : {1000, 1024}) {
    const int64_t key = (int64_t{1} << 31) - 1;
    std::vector<int32_t> table(key / block_size + 1, 0);
    table.back() = 123456;
    const PagedSlot slot_of(block_size);
    EXPECT_EQ(slot_of(table.data(), key), int64_t{123456} * block_size + key % block_size)
        << block_size;
  }
}

}  // namespace
}  // namespace fp8llm::cuda::detail
