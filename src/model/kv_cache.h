// The paged KV cache as the ops see it: per layer, keys and values of every slot (block *
// block_size + offset) in one element type, [slots, kv_heads * head_dim] row-major; for FP8, one
// fp32 scale per slot and KV head beside them (docs/FP8.md, "The KV cache"). Which blocks belong
// to which sequence is the block manager's business (src/kv/); the ops only follow a Batch's block
// tables and slots.
#pragma once

#include <cstdint>
#include <vector>

#include "fp8llm/modes.h"

namespace fp8llm {

struct KvCacheSpec {
  int64_t layers = 0;
  int64_t blocks = 0;
  int64_t block_size = 16;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  KvCacheDtype dtype = KvCacheDtype::F32;  // F32, BF16 or Fp8 (never Auto here)

  int64_t slots() const { return blocks * block_size; }
  int64_t row_elements() const { return kv_heads * head_dim; }
  // Bytes of one slot's keys (or values) in one layer, scales included.
  uint64_t slot_bytes() const;
  // Bytes of one block over all layers, keys and values: what a sequence pays per block_size
  // tokens.
  uint64_t block_bytes() const { return slot_bytes() * 2 * layers * block_size; }
};

size_t kv_element_bytes(KvCacheDtype dtype);

// Where one layer's cache is.
struct KvLayer {
  void* k = nullptr;
  void* v = nullptr;
  float* k_scale = nullptr;  // Fp8 only: [slots, kv_heads]
  float* v_scale = nullptr;
};

struct KvCacheView {
  KvCacheSpec spec;
  std::vector<KvLayer> layers;
};

// The memory behind a KvCacheView, in a backend's memory (kv storage of cpu/ and cuda/).
class KvStorage {
 public:
  virtual ~KvStorage() = default;
  virtual const KvCacheView& view() const = 0;
  // Copies block `src` into block `dst` in every layer (copy-on-write of a shared block).
  virtual void copy_block(int64_t src, int64_t dst) = 0;
};

}  // namespace fp8llm
