// The BPE merge ranks: (left id, right id) -> (rank, merged id), in one flat open-addressing
// table. Lookups happen for every adjacent symbol pair of every uncached piece, so they should
// touch one cache line, not chase list nodes as std::unordered_map does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fp8llm {

struct MergeRule {
  uint32_t rank;
  int32_t id;  // the merged token
};

class MergeTable {
 public:
  // Adds or replaces the rule for (left, right); ids are non-negative.
  void insert_or_assign(int32_t left, int32_t right, MergeRule rule);
  const MergeRule* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    for (size_t i = index(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.rule;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    MergeRule rule{};
  };
  static uint64_t pack(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  size_t index(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
  }
  void grow();

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

}  // namespace fp8llm
