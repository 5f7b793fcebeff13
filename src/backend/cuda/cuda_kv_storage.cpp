#include "backend/cuda/cuda_kv_storage.h"

#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"

namespace fp8llm::cuda {
namespace {

size_t values_bytes(const KvCacheSpec& s) {  // one layer's keys (or values)
  return (static_cast<size_t>(s.slots() * s.row_elements()) * kv_element_bytes(s.dtype) + 255) /
         256 * 256;
}

size_t scales_bytes(const KvCacheSpec& s) {
  if (s.dtype != KvCacheDtype::Fp8) return 0;
  return (static_cast<size_t>(s.slots() * s.kv_heads) * sizeof(float) + 255) / 256 * 256;
}

}  // namespace

uint64_t CudaKvStorage::bytes_for(const KvCacheSpec& s) {
  return 2ull * static_cast<uint64_t>(s.layers) * (values_bytes(s) + scales_bytes(s));
}

CudaKvStorage::CudaKvStorage(const KvCacheSpec& spec, cudaStream_t stream)
    : memory_(bytes_for(spec)), stream_(stream) {
  view_.spec = spec;
  memory_.fill_zero();
  std::byte* at = memory_.as<std::byte>();
  const size_t vb = values_bytes(spec), sb = scales_bytes(spec);
  for (int64_t l = 0; l < spec.layers; ++l) {
    KvLayer layer;
    layer.k = at;
    layer.v = at + vb;
    at += 2 * vb;
    if (sb > 0) {
      layer.k_scale = reinterpret_cast<float*>(at);
      layer.v_scale = reinterpret_cast<float*>(at + sb);
      at += 2 * sb;
    }
    view_.layers.push_back(layer);
  }
}

void CudaKvStorage::copy_block(int64_t src, int64_t dst) {
  const KvCacheSpec& s = view_.spec;
  FP8LLM_CHECK(src >= 0 && dst >= 0 && src < s.blocks && dst < s.blocks,
               "kv cache: copy of block {} to {} outside {} blocks", src, dst, s.blocks);
  const size_t bytes =
      static_cast<size_t>(s.block_size * s.row_elements()) * kv_element_bytes(s.dtype);
  const size_t scales = static_cast<size_t>(s.block_size * s.kv_heads) * sizeof(float);
  const auto copy = [&](void* base, size_t per_block) {
    auto* p = static_cast<std::byte*>(base);
    CUDA_CHECK(cudaMemcpyAsync(p + static_cast<size_t>(dst) * per_block,
                               p + static_cast<size_t>(src) * per_block, per_block,
                               cudaMemcpyDeviceToDevice, stream_));
  };
  for (const KvLayer& l : view_.layers) {
    copy(l.k, bytes);
    copy(l.v, bytes);
    if (l.k_scale != nullptr) {
      copy(l.k_scale, scales);
      copy(l.v_scale, scales);
    }
  }
}

}  // namespace fp8llm::cuda
