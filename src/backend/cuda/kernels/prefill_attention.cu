// The entry of prefill_attention.h: the layout checks, then the kernel of
// prefill_attention_mma.cu.
#include "backend/cuda/kernels/prefill_attention.h"

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace fp8llm::cuda {

bool prefill_attention_supported(int64_t head_dim) {
  if (head_dim != 64 && head_dim != 128) return false;
  // The shared memory a block may opt into on this device (99 KiB on Ada, 227 KiB on Hopper).
  int device = 0, limit = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
          cudaSuccess)
    return false;
  return prefill_attention_mma_shared_bytes(head_dim) <= static_cast<size_t>(limit);
}

void launch_prefill_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                              const PagedBatch& batch, int64_t first_token, const PagedKv& kv,
                              float* out, cudaStream_t stream) {
  if (batch.tokens <= first_token) return;
  if (!prefill_attention_supported(head_dim) || kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("launch_prefill_attention: unsupported head layout");
  launch_prefill_attention_mma(q, heads, kv_heads, head_dim, batch, first_token, kv, out, stream);
}

}  // namespace fp8llm::cuda
