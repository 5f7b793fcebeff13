#include "kv/block_manager.h"

#include <algorithm>
#include <stdexcept>

#include "core/error.h"

namespace fp8llm {
namespace {

const uint64_t kRootHash = kPrefixRoot;

uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

BlockManager::BlockManager(int64_t num_blocks, int64_t block_size, bool prefix_caching)
    : block_size_(block_size), prefix_caching_(prefix_caching) {
  FP8LLM_CHECK(block_size > 0, "kv cache: block size {} must be positive", block_size);
  FP8LLM_CHECK(num_blocks >= 2, "kv cache: {} blocks is too few (one is reserved)", num_blocks);
  blocks_.resize(static_cast<size_t>(num_blocks));
  for (int32_t b = 1; b < static_cast<int32_t>(num_blocks); ++b) {
    blocks_[static_cast<size_t>(b)].free_at = free_.insert(free_.end(), b);
    blocks_[static_cast<size_t>(b)].is_free = true;
  }
}

uint64_t BlockManager::chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = mix(parent);
  for (int32_t t : tokens)
    h = mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + kRootHash));
  return h;
}

int32_t BlockManager::allocate() {
  if (free_.empty()) throw std::logic_error("kv cache: no free block (the scheduler checks first)");
  const int32_t b = free_.front();
  free_.pop_front();
  Block& block = blocks_[static_cast<size_t>(b)];
  block.is_free = false;
  unregister(b);  // a registered free block is reused: its keys are about to be overwritten
  block.ref = 1;
  return b;
}

void BlockManager::add_reference(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  if (block.is_free) {
    free_.erase(block.free_at);
    block.is_free = false;
  }
  ++block.ref;
}

void BlockManager::drop_reference(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  if (block.ref <= 0) throw std::logic_error("kv cache: a block released twice");
  if (--block.ref > 0) return;
  // Registered blocks may be asked for again: they go to the back, to be reused last. The others
  // hold nothing anyone can find and are reused first.
  block.free_at = block.registered ? free_.insert(free_.end(), b) : free_.insert(free_.begin(), b);
  block.is_free = true;
}

void BlockManager::unregister(int32_t b) {
  Block& block = blocks_[static_cast<size_t>(b)];
  if (!block.registered) return;
  auto [first, last] = registry_.equal_range(block.hash);
  for (auto it = first; it != last; ++it) {
    if (it->second == b) {
      registry_.erase(it);
      break;
    }
  }
  block.registered = false;
  block.tokens.clear();
  block.parent = -1;
}

int64_t BlockManager::blocks_needed(const std::vector<int32_t>& table, int64_t first_write,
                                    int64_t end) const {
  const int64_t have = static_cast<int64_t>(table.size());
  const int64_t want = (end + block_size_ - 1) / block_size_;
  int64_t needed = std::max<int64_t>(0, want - have);
  const int64_t b = first_write / block_size_;
  if (first_write < end && b < have && blocks_[static_cast<size_t>(table[b])].ref > 1) ++needed;
  return needed;
}

std::vector<BlockCopy> BlockManager::prepare_write(std::vector<int32_t>& table, int64_t first_write,
                                                   int64_t end) {
  std::vector<BlockCopy> copies;
  const int64_t b = first_write / block_size_;
  if (first_write < end && b < static_cast<int64_t>(table.size())) {
    int32_t& shared = table[static_cast<size_t>(b)];
    if (blocks_[static_cast<size_t>(shared)].ref > 1) {
      const int32_t copy = allocate();
      copies.push_back({shared, copy});
      drop_reference(shared);
      shared = copy;
    }
  }
  while (static_cast<int64_t>(table.size()) * block_size_ < end) table.push_back(allocate());
  return copies;
}

std::vector<int32_t> BlockManager::match_prefix(std::span<const int32_t> tokens, int64_t max_tokens,
                                                uint64_t root) const {
  std::vector<int32_t> found;
  if (!prefix_caching_) return found;
  const int64_t whole =
      std::min<int64_t>(max_tokens, static_cast<int64_t>(tokens.size())) / block_size_;
  uint64_t hash = root;
  int32_t parent = -1;
  for (int64_t i = 0; i < whole; ++i) {
    const auto block_tokens =
        tokens.subspan(static_cast<size_t>(i * block_size_), static_cast<size_t>(block_size_));
    hash = chain_hash(hash, block_tokens);
    int32_t match = -1;
    auto [first, last] = registry_.equal_range(hash);
    for (auto it = first; it != last && match < 0; ++it) {
      const Block& block = blocks_[static_cast<size_t>(it->second)];
      if (block.parent == parent && block.root == root &&
          std::equal(block.tokens.begin(), block.tokens.end(), block_tokens.begin(),
                     block_tokens.end()))
        match = it->second;
    }
    if (match < 0) break;
    found.push_back(match);
    parent = match;
  }
  return found;
}

void BlockManager::share(std::vector<int32_t>& table, std::span<const int32_t> blocks,
                         PrefixChain& chain) {
  for (int32_t b : blocks) {
    add_reference(b);
    table.push_back(b);
    chain.hash = blocks_[static_cast<size_t>(b)].hash;
  }
  chain.blocks = static_cast<int64_t>(table.size());
}

void BlockManager::register_full_blocks(const std::vector<int32_t>& table,
                                        std::span<const int32_t> tokens, int64_t computed,
                                        PrefixChain& chain) {
  if (!prefix_caching_) return;
  const int64_t full =
      std::min<int64_t>(computed / block_size_, static_cast<int64_t>(table.size()));
  for (int64_t i = chain.blocks; i < full; ++i) {
    const auto block_tokens =
        tokens.subspan(static_cast<size_t>(i * block_size_), static_cast<size_t>(block_size_));
    chain.hash = chain_hash(chain.hash, block_tokens);
    const int32_t id = table[static_cast<size_t>(i)];
    Block& block = blocks_[static_cast<size_t>(id)];
    if (!block.registered) {
      block.registered = true;
      block.hash = chain.hash;
      block.parent = i == 0 ? -1 : table[static_cast<size_t>(i - 1)];
      block.root = chain.root;
      block.tokens.assign(block_tokens.begin(), block_tokens.end());
      registry_.emplace(chain.hash, id);
    }
  }
  chain.blocks = std::max(chain.blocks, full);
}

std::vector<int32_t> BlockManager::fork(const std::vector<int32_t>& table) {
  for (int32_t b : table) add_reference(b);
  return table;
}

void BlockManager::release(std::vector<int32_t>& table) {
  // Last block first: the end of a sequence is the least likely to be shared, so it is reused
  // before its beginning.
  for (auto it = table.rbegin(); it != table.rend(); ++it) drop_reference(*it);
  table.clear();
}

void BlockManager::reset() {
  registry_.clear();
  free_.clear();
  for (int32_t b = 1; b < static_cast<int32_t>(blocks_.size()); ++b) {
    Block& block = blocks_[static_cast<size_t>(b)];
    block = Block{};
    block.free_at = free_.insert(free_.end(), b);
    block.is_free = true;
  }
}

void BlockManager::reset_prefix_cache() {
  for (int32_t b = 1; b < static_cast<int32_t>(blocks_.size()); ++b) unregister(b);
}

}  // namespace fp8llm
