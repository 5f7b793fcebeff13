// The paged KV cache in device memory: one allocation holding every layer's keys, values and (for
// FP8) scales, laid out as model/kv_cache.h says.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/runtime/device_buffer.h"
#include "model/kv_cache.h"

namespace fp8llm::cuda {

class CudaKvStorage final : public KvStorage {
 public:
  CudaKvStorage(const KvCacheSpec& spec, cudaStream_t stream);
  const KvCacheView& view() const override { return view_; }
  // Enqueued on the backend's stream, before the pass that writes the copy.
  void copy_block(int64_t src, int64_t dst) override;
  // Bytes a cache of `spec` takes.
  static uint64_t bytes_for(const KvCacheSpec& spec);

 private:
  DeviceBuffer memory_;
  KvCacheView view_;
  cudaStream_t stream_;
};

}  // namespace fp8llm::cuda
