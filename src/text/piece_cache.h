// Remembers the ids of recently encoded pieces, since text repeats its words. A fixed number of
// slots, each holding the last piece whose hash landed there: memory stays bounded however much
// distinct text passes through, and a lookup costs one hash and one slot. Safe for concurrent use
// (each slot is guarded by one of a set of locks).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fp8llm {

class PieceCache {
 public:
  explicit PieceCache(size_t slot_count_log2 = 16);
  PieceCache(const PieceCache&) = delete;
  PieceCache& operator=(const PieceCache&) = delete;

  static uint64_t hash(std::string_view piece);
  // Appends the ids stored for `piece` (whose hash is `h`) and returns true, or returns false.
  bool lookup(std::string_view piece, uint64_t h, std::vector<int32_t>& out) const;
  void store(std::string_view piece, uint64_t h, std::span<const int32_t> ids);
  void clear();

 private:
  struct Slot {
    bool used = false;
    uint64_t hash = 0;
    std::string piece;
    std::vector<int32_t> ids;
  };
  size_t slot_of(uint64_t h) const { return static_cast<size_t>(h) & (slots_.size() - 1); }
  std::mutex& lock_of(size_t slot) const { return locks_[slot % locks_.size()]; }

  std::vector<Slot> slots_;
  mutable std::array<std::mutex, 64> locks_;
};

}  // namespace fp8llm
