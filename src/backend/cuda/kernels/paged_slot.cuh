// The cache slot of a sequence's key: its block from the block table, then its place in the
// block. The attention kernels look one up for every key row they read, so the index arithmetic
// is 32-bit (a context holds far fewer than 2^31 keys) and a shift and mask when the block size
// is a power of two (the default, 16): a 64-bit division and remainder cost about as many
// instructions as the arithmetic a decode round does with the row. Host code can call it too
// (its test runs without a GPU).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fp8llm::cuda::detail {

class PagedSlot {
 public:
  __host__ __device__ __forceinline__ explicit PagedSlot(int64_t block_size)
      : size_(static_cast<uint32_t>(block_size)), pow2_((size_ & (size_ - 1)) == 0) {
    while ((1u << shift_) < size_) ++shift_;
  }

  // Slot of key `key` (0 <= key < 2^31) of the sequence whose block table is `table`.
  __host__ __device__ __forceinline__ int64_t operator()(const int32_t* __restrict__ table,
                                                         int64_t key) const {
    const uint32_t k = static_cast<uint32_t>(key);
    const uint32_t block = pow2_ ? k >> shift_ : k / size_;
    return static_cast<int64_t>(table[block]) * size_ + (k - block * size_);
  }

  // The same in two steps, so that a kernel can load the table entry well before it needs the
  // slot: the entry of the table that holds `key`, then the slot from that entry's block.
  __host__ __device__ __forceinline__ uint32_t entry(int64_t key) const {
    const uint32_t k = static_cast<uint32_t>(key);
    return pow2_ ? k >> shift_ : k / size_;
  }
  __host__ __device__ __forceinline__ int64_t slot(int32_t block, int64_t key) const {
    const uint32_t k = static_cast<uint32_t>(key);
    const uint32_t offset = k - entry(key) * size_;
    return static_cast<int64_t>(block) * size_ + offset;
  }

 private:
  uint32_t size_;
  bool pow2_;
  uint32_t shift_ = 0;
};

}  // namespace fp8llm::cuda::detail
