// The paged KV cache in host memory (what the CPU backend attends over).
#pragma once

#include <memory>
#include <vector>

#include "model/kv_cache.h"

namespace fp8llm {

class CpuKvStorage final : public KvStorage {
 public:
  explicit CpuKvStorage(const KvCacheSpec& spec);
  const KvCacheView& view() const override { return view_; }
  void copy_block(int64_t src, int64_t dst) override;

 private:
  std::vector<std::byte> values_;  // per layer: keys, values
  std::vector<float> scales_;      // Fp8: per layer, key scales, value scales
  KvCacheView view_;
};

}  // namespace fp8llm
