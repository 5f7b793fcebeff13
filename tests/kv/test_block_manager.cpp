// The KV block manager: allocation and release, reference counts, copy-on-write of shared blocks,
// and the prefix cache (matching, verification, reuse order, reset).
#include "kv/block_manager.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace fp8llm::test {
namespace {

std::vector<int32_t> iota_tokens(int n, int32_t first = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

TEST(BlockManager, BlockZeroIsNeverHandedOut) {
  BlockManager m(5, 4, true);
  EXPECT_EQ(m.usable_blocks(), 4);
  EXPECT_EQ(m.free_blocks(), 4);
  std::vector<int32_t> table;
  ASSERT_EQ(m.blocks_needed(table, 0, 16), 4);
  m.prepare_write(table, 0, 16);
  EXPECT_EQ(table.size(), 4u);
  for (int32_t b : table) EXPECT_NE(b, 0);
  EXPECT_EQ(m.free_blocks(), 0);
  EXPECT_EQ(m.used_blocks(), 4);
  m.release(table);
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(m.free_blocks(), 4);
}

TEST(BlockManager, GrowsBlockByBlock) {
  BlockManager m(10, 4, false);
  std::vector<int32_t> table;
  EXPECT_EQ(m.blocks_needed(table, 0, 1), 1);
  m.prepare_write(table, 0, 1);
  EXPECT_EQ(m.blocks_needed(table, 1, 4), 0);
  EXPECT_EQ(m.blocks_needed(table, 1, 5), 1);
  m.prepare_write(table, 4, 9);
  EXPECT_EQ(table.size(), 3u);
}

TEST(BlockManager, ForkSharesAndCopyOnWriteSplits) {
  BlockManager m(10, 4, false);
  std::vector<int32_t> parent;
  m.prepare_write(parent, 0, 6);  // blocks for positions 0..5: the second is partly filled
  std::vector<int32_t> child = m.fork(parent);
  EXPECT_EQ(child, parent);
  EXPECT_EQ(m.references(parent[1]), 2);
  // Writing position 6 of the child: its shared second block is copied first.
  EXPECT_EQ(m.blocks_needed(child, 6, 7), 1);
  const std::vector<BlockCopy> copies = m.prepare_write(child, 6, 7);
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].src, parent[1]);
  EXPECT_EQ(copies[0].dst, child[1]);
  EXPECT_NE(child[1], parent[1]);
  EXPECT_EQ(child[0], parent[0]);  // full, never written again: still shared
  EXPECT_EQ(m.references(parent[0]), 2);
  EXPECT_EQ(m.references(parent[1]), 1);
  // The parent is alone on its block now: no copy.
  EXPECT_EQ(m.blocks_needed(parent, 6, 7), 0);
  EXPECT_TRUE(m.prepare_write(parent, 6, 7).empty());
  m.release(child);
  m.release(parent);
  EXPECT_EQ(m.free_blocks(), 9);
}

TEST(BlockManager, PrefixCacheMatchesWholeComputedBlocks) {
  BlockManager m(20, 4, true);
  const std::vector<int32_t> tokens = iota_tokens(11);
  std::vector<int32_t> a;
  PrefixChain chain;
  m.prepare_write(a, 0, 11);
  m.register_full_blocks(a, tokens, 11, chain);
  EXPECT_EQ(chain.blocks, 2);  // positions 0..7 fill two blocks; the third is partial
  // A new sequence with the same first 9 tokens finds the two full blocks.
  std::vector<int32_t> b_tokens(tokens.begin(), tokens.begin() + 9);
  b_tokens.push_back(99);
  std::vector<int32_t> hit = m.match_prefix(b_tokens, 9);
  ASSERT_EQ(hit.size(), 2u);
  EXPECT_EQ(hit[0], a[0]);
  EXPECT_EQ(hit[1], a[1]);
  // At most `max_tokens` tokens: only whole blocks within it.
  EXPECT_EQ(m.match_prefix(b_tokens, 7).size(), 1u);
  // A different first block matches nothing, even where later blocks agree.
  std::vector<int32_t> c_tokens = tokens;
  c_tokens[0] = 500;
  EXPECT_TRUE(m.match_prefix(c_tokens, 10).empty());
  // Sharing takes references.
  std::vector<int32_t> b;
  PrefixChain b_chain;
  m.share(b, hit, b_chain);
  EXPECT_EQ(m.references(a[0]), 2);
  EXPECT_EQ(b_chain.blocks, 2);
  m.release(b);
  m.release(a);
  // Freed but still registered: found again, and sharing takes them back from the free list.
  const int64_t free_before = m.free_blocks();
  hit = m.match_prefix(tokens, 10);
  ASSERT_EQ(hit.size(), 2u);
  std::vector<int32_t> d;
  PrefixChain d_chain;
  m.share(d, hit, d_chain);
  EXPECT_EQ(m.free_blocks(), free_before - 2);
  m.release(d);
}

TEST(BlockManager, RegisteredBlocksAreReusedLastAndForgottenWhenReused) {
  BlockManager m(5, 2, true);  // 4 usable blocks
  const std::vector<int32_t> tokens = iota_tokens(4);
  std::vector<int32_t> a;
  PrefixChain chain;
  m.prepare_write(a, 0, 4);
  m.register_full_blocks(a, tokens, 4, chain);
  m.release(a);
  // Two unregistered blocks go first.
  std::vector<int32_t> b;
  m.prepare_write(b, 0, 4);
  EXPECT_EQ(m.match_prefix(tokens, 4).size(), 2u);
  // Then the registered ones are taken and no longer match.
  std::vector<int32_t> c;
  m.prepare_write(c, 0, 4);
  EXPECT_TRUE(m.match_prefix(tokens, 4).empty());
  m.release(b);
  m.release(c);
  EXPECT_EQ(m.free_blocks(), 4);
}

TEST(BlockManager, ResetForgetsEveryRegistration) {
  BlockManager m(10, 2, true);
  const std::vector<int32_t> tokens = iota_tokens(6);
  std::vector<int32_t> a;
  PrefixChain chain;
  m.prepare_write(a, 0, 6);
  m.register_full_blocks(a, tokens, 6, chain);
  ASSERT_EQ(m.match_prefix(tokens, 6).size(), 3u);
  m.reset_prefix_cache();
  EXPECT_TRUE(m.match_prefix(tokens, 6).empty());
  m.release(a);
}

TEST(BlockManager, WithoutPrefixCachingNothingMatches) {
  BlockManager m(10, 2, false);
  const std::vector<int32_t> tokens = iota_tokens(6);
  std::vector<int32_t> a;
  PrefixChain chain;
  m.prepare_write(a, 0, 6);
  m.register_full_blocks(a, tokens, 6, chain);
  EXPECT_TRUE(m.match_prefix(tokens, 6).empty());
}

TEST(BlockManager, BadSizesAreErrors) {
  EXPECT_ANY_THROW(BlockManager(1, 16, true));
  EXPECT_ANY_THROW(BlockManager(10, 0, true));
}

}  // namespace
}  // namespace fp8llm::test
