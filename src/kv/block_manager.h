// The paged KV cache's bookkeeping: which blocks are free, which sequences hold which blocks
// (reference counts: the n samples of a prompt and prompts with a common prefix share blocks), and
// the prefix cache. No KV bytes live here; the cache itself is a KvStorage (model/kv_cache.h).
//
// Prefix cache: a block whose block_size positions are all computed is registered under a hash of
// its tokens chained with the hash of the block before it, so equal hashes mean equal prefixes;
// matches are also checked token by token and by parent block, so a hash collision cannot reuse
// the wrong keys. A block nobody holds stays registered until it is needed for something else:
// free blocks are handed out least recently freed first, and never-registered ones before
// registered ones.
//
// Block 0 is never handed out: padded rows of a batch point at it.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

namespace fp8llm {

struct BlockCopy {
  int32_t src = 0;
  int32_t dst = 0;
};

// How far a sequence's blocks are registered in the prefix cache: its first `blocks` blocks, whose
// chained hash is `hash`. Chains start from a root: the default for the base model, another for
// each LoRA adapter version (the same tokens give other keys and values under an adapter).
inline constexpr uint64_t kPrefixRoot = 0x9e3779b97f4a7c15ull;
struct PrefixChain {
  int64_t blocks = 0;
  uint64_t hash = kPrefixRoot;
  uint64_t root = kPrefixRoot;
  static PrefixChain from(uint64_t root) { return {0, root, root}; }
};

class BlockManager {
 public:
  BlockManager(int64_t num_blocks, int64_t block_size, bool prefix_caching);

  int64_t block_size() const { return block_size_; }
  // Blocks sequences can use (all but block 0).
  int64_t usable_blocks() const { return static_cast<int64_t>(blocks_.size()) - 1; }
  // Blocks no sequence holds (registered ones included: they are reused when needed).
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_blocks() const { return usable_blocks() - free_blocks(); }
  bool prefix_caching() const { return prefix_caching_; }

  // New blocks `table` needs to hold positions [0, end) with positions from `first_write` on
  // writable: the blocks missing, plus one for a shared block that must be copied before it is
  // written (copy-on-write).
  int64_t blocks_needed(const std::vector<int32_t>& table, int64_t first_write, int64_t end) const;
  // Makes `table` hold [0, end) and the block holding `first_write` private; returns the copies
  // to make before anything is written. Needs blocks_needed() free blocks.
  std::vector<BlockCopy> prepare_write(std::vector<int32_t>& table, int64_t first_write,
                                       int64_t end);

  // The registered blocks holding the longest prefix of `tokens` in the chain from `root`, whole
  // blocks only, at most `max_tokens` tokens. Takes no reference.
  std::vector<int32_t> match_prefix(std::span<const int32_t> tokens, int64_t max_tokens,
                                    uint64_t root = kPrefixRoot) const;
  // Takes a reference to each of `blocks` (from match_prefix for an empty `table`) and appends them
  // to `table`, which then continues their chain.
  void share(std::vector<int32_t>& table, std::span<const int32_t> blocks, PrefixChain& chain);
  // Registers the blocks of `table` that positions [0, computed) fill completely and that `chain`
  // does not cover yet.
  void register_full_blocks(const std::vector<int32_t>& table, std::span<const int32_t> tokens,
                            int64_t computed, PrefixChain& chain);
  // A new table holding the same blocks (one more reference to each).
  std::vector<int32_t> fork(const std::vector<int32_t>& table);
  // Drops the references of `table` and empties it.
  void release(std::vector<int32_t>& table);
  // Forgets every registration (after the weights change, cached keys and values are stale).
  void reset_prefix_cache();
  // Frees every block and forgets every registration, as when the cache was new (its memory was
  // given back); every block table handed out before is void.
  void reset();

  // Prefix-cache lookups, in tokens: asked for and found.
  int64_t prefix_query_tokens() const { return query_tokens_; }
  int64_t prefix_hit_tokens() const { return hit_tokens_; }
  void count_prefix_lookup(int64_t asked, int64_t found) {
    query_tokens_ += asked;
    hit_tokens_ += found;
  }
  // Reference count of a block (tests and checks).
  int32_t references(int32_t block) const { return blocks_[static_cast<size_t>(block)].ref; }

 private:
  struct Block {
    int32_t ref = 0;
    bool registered = false;
    uint64_t hash = 0;
    int32_t parent = -1;  // the block before it when it was registered (-1: the first)
    uint64_t root = 0;    // the chain's root
    std::vector<int32_t> tokens;
    std::list<int32_t>::iterator free_at;
    bool is_free = false;
  };
  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens);
  int32_t allocate();
  void add_reference(int32_t block);
  void drop_reference(int32_t block);
  void unregister(int32_t block);

  int64_t block_size_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  std::list<int32_t> free_;  // front: handed out next
  std::unordered_multimap<uint64_t, int32_t> registry_;
  int64_t query_tokens_ = 0;
  int64_t hit_tokens_ = 0;
};

}  // namespace fp8llm
