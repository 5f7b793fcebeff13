// Rows of one layer's paged KV cache in its element type (fp32, bf16, or e4m3 with a scale per slot
// and KV head; docs/FP8.md "The KV cache"), written from fp32 and read back as fp32.
#pragma once

#include <cstdint>

#include "model/kv_cache.h"

namespace fp8llm::cpu {

class KvRows {
 public:
  KvRows(const KvCacheSpec& spec, void* data, float* scales)
      : spec_(spec), data_(data), scales_(scales) {}

  // Stores x [kv_heads * head_dim] as the row of `slot`.
  void store(int64_t slot, const float* x) const;
  // The fp32 values of KV head g at `slot`: a pointer into the cache (fp32), or `buf` (head_dim
  // floats) holding them widened.
  const float* head(int64_t slot, int64_t g, float* buf) const;

 private:
  const KvCacheSpec& spec_;
  void* data_;
  float* scales_;
};

}  // namespace fp8llm::cpu
