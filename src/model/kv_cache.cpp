#include "model/kv_cache.h"

#include "core/error.h"

namespace fp8llm {

size_t kv_element_bytes(KvCacheDtype dtype) {
  switch (dtype) {
    case KvCacheDtype::F32:
      return 4;
    case KvCacheDtype::BF16:
      return 2;
    case KvCacheDtype::Fp8:
      return 1;
    case KvCacheDtype::Auto:
      break;
  }
  fail("kv cache: the element type must be settled (fp32, bf16 or fp8)");
}

uint64_t KvCacheSpec::slot_bytes() const {
  uint64_t bytes = static_cast<uint64_t>(row_elements()) * kv_element_bytes(dtype);
  if (dtype == KvCacheDtype::Fp8) bytes += static_cast<uint64_t>(kv_heads) * sizeof(float);
  return bytes;
}

}  // namespace fp8llm
