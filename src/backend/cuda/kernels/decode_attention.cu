// The entry of decode_attention.h: the layout checks and the grid, then the kernel of
// decode_attention_pipelined.cu.
#include "backend/cuda/kernels/decode_attention.h"

#include <cstdint>
#include <stdexcept>

#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"

namespace fp8llm::cuda {

bool decode_attention_supported(KvCacheDtype dtype, int64_t head_dim) {
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return false;
  return !(dtype == KvCacheDtype::F32 && head_dim == 256);
}

void launch_decode_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                             const PagedBatch& batch, int64_t decode_tokens, const PagedKv& kv,
                             const DecodeScratch& scratch, float* out, cudaStream_t stream) {
  if (decode_tokens <= 0) return;
  if (!decode_attention_supported(kv.dtype, head_dim) || kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("decode attention: unsupported head layout");
  launch_decode_attention_pipelined(q, heads, kv_heads, head_dim, batch, decode_tokens, kv, scratch,
                                    out,
                                    choose_decode_grid(heads, kv_heads, decode_tokens,
                                                       device_multiprocessors(), batch.max_ranges),
                                    stream);
}

}  // namespace fp8llm::cuda
