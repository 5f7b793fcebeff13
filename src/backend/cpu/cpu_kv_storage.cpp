#include "backend/cpu/cpu_kv_storage.h"

#include <cstring>

#include "core/error.h"

namespace fp8llm {

CpuKvStorage::CpuKvStorage(const KvCacheSpec& spec) {
  view_.spec = spec;
  const size_t per = static_cast<size_t>(spec.slots() * spec.row_elements()) *
                     kv_element_bytes(spec.dtype);  // one layer's keys (or values)
  const size_t scales_per =
      spec.dtype == KvCacheDtype::Fp8 ? static_cast<size_t>(spec.slots() * spec.kv_heads) : 0;
  values_.resize(per * 2 * static_cast<size_t>(spec.layers));
  scales_.resize(scales_per * 2 * static_cast<size_t>(spec.layers));
  for (int64_t l = 0; l < spec.layers; ++l) {
    const auto i = static_cast<size_t>(l) * 2;
    KvLayer layer{values_.data() + i * per, values_.data() + (i + 1) * per, nullptr, nullptr};
    if (scales_per > 0) {
      layer.k_scale = scales_.data() + i * scales_per;
      layer.v_scale = scales_.data() + (i + 1) * scales_per;
    }
    view_.layers.push_back(layer);
  }
}

void CpuKvStorage::copy_block(int64_t src, int64_t dst) {
  const KvCacheSpec& s = view_.spec;
  FP8LLM_CHECK(src >= 0 && dst >= 0 && src < s.blocks && dst < s.blocks,
               "kv cache: copy of block {} to {} outside {} blocks", src, dst, s.blocks);
  const size_t bytes =
      static_cast<size_t>(s.block_size * s.row_elements()) * kv_element_bytes(s.dtype);
  const size_t scales = static_cast<size_t>(s.block_size * s.kv_heads);
  for (const KvLayer& l : view_.layers) {
    for (void* base : {l.k, l.v}) {
      auto* p = static_cast<std::byte*>(base);
      std::memcpy(p + static_cast<size_t>(dst) * bytes, p + static_cast<size_t>(src) * bytes,
                  bytes);
    }
    for (float* base : {l.k_scale, l.v_scale}) {
      if (base == nullptr) continue;
      std::memcpy(base + static_cast<size_t>(dst) * scales,
                  base + static_cast<size_t>(src) * scales, scales * sizeof(float));
    }
  }
}

}  // namespace fp8llm
