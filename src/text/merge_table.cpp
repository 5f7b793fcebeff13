#include "text/merge_table.h"

#include <bit>

namespace fp8llm {

void MergeTable::grow() {
  const size_t capacity = slots_.empty() ? 1024 : 2 * slots_.size();
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t i = index(s.key);
    while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

void MergeTable::insert_or_assign(int32_t left, int32_t right, MergeRule rule) {
  // Keep the table at most half full so that probe runs stay short.
  if (2 * (size_ + 1) > slots_.size()) grow();
  const uint64_t key = pack(left, right);
  size_t i = index(key);
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i] = Slot{key, rule};
}

}  // namespace fp8llm
