#include "text/piece_cache.h"

#include <functional>

namespace fp8llm {

PieceCache::PieceCache(size_t slot_count_log2) : slots_(size_t{1} << slot_count_log2) {}

uint64_t PieceCache::hash(std::string_view piece) {
  return std::hash<std::string_view>{}(piece);
}

bool PieceCache::lookup(std::string_view piece, uint64_t h, std::vector<int32_t>& out) const {
  const size_t i = slot_of(h);
  std::lock_guard lock(lock_of(i));
  const Slot& s = slots_[i];
  if (!s.used || s.hash != h || s.piece != piece) return false;
  out.insert(out.end(), s.ids.begin(), s.ids.end());
  return true;
}

void PieceCache::store(std::string_view piece, uint64_t h, std::span<const int32_t> ids) {
  const size_t i = slot_of(h);
  std::lock_guard lock(lock_of(i));
  Slot& s = slots_[i];
  s.used = true;
  s.hash = h;
  s.piece.assign(piece);
  s.ids.assign(ids.begin(), ids.end());
}

void PieceCache::clear() {
  for (size_t i = 0; i < slots_.size(); ++i) {
    std::lock_guard lock(lock_of(i));
    slots_[i].used = false;
  }
}

}  // namespace fp8llm
