// The entry of decode_attention.h: the layout checks, the kernel and its grid.
#include "backend/cuda/kernels/decode_attention.h"

#include <cstdint>
#include <stdexcept>

#include "backend/cuda/kernels/decode_attention.cuh"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"

namespace fp8llm::cuda {

bool decode_attention_supported(KvCacheDtype dtype, int64_t head_dim) {
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return false;
  return !(dtype == KvCacheDtype::F32 && head_dim == 256);
}

DecodeKernel decode_kernel_for(KvCacheDtype dtype, int64_t heads, int64_t kv_heads,
                               int64_t head_dim) {
  const bool mma = dtype == KvCacheDtype::BF16 && (head_dim == 64 || head_dim == 128) &&
                   kv_heads > 0 && heads % kv_heads == 0 &&
                   heads / kv_heads <= detail::kDecodeMmaGroupHeads;
  return mma ? DecodeKernel::kTensorCores : DecodeKernel::kCudaCores;
}

DecodeGrid choose_decode_grid(DecodeKernel kernel, int64_t heads, int64_t kv_heads,
                              int64_t decode_tokens, int64_t multiprocessors, int64_t max_ranges) {
  const bool mma = kernel == DecodeKernel::kTensorCores;
  const int64_t cap =
      max_ranges > 0 && max_ranges < kDecodeMaxSplits ? max_ranges : kDecodeMaxSplits;
  const int64_t per_token =
      kv_heads *
      detail::decode_head_blocks(heads, kv_heads,
                                 mma ? detail::kDecodeMmaGroupHeads : detail::kDecodeHeadsPerBlock);
  const int64_t blocks = per_token * decode_tokens;
  // Two blocks an SM or more: one block a (token, KV head) walking its ranges was the fastest
  // at batch 64 and 256 (bench_attention --sweep, H100); more blocks only added waves.
  if (blocks >= 2 * multiprocessors) return DecodeGrid{1};
  // Fewer: enough range blocks for one wave of resident blocks.
  const int64_t target =
      multiprocessors * (mma ? detail::kDecodeMmaBlocksPerSm : detail::kDecodeCudaCoreBlocksPerSm);
  const int64_t z = (target + blocks - 1) / blocks;
  return DecodeGrid{z < cap ? z : cap};
}

void launch_decode_attention(const float* q, int64_t heads, int64_t kv_heads, int64_t head_dim,
                             const PagedBatch& batch, int64_t decode_tokens, const PagedKv& kv,
                             const DecodeScratch& scratch, float* out, cudaStream_t stream) {
  if (decode_tokens <= 0) return;
  if (!decode_attention_supported(kv.dtype, head_dim) || kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("decode attention: unsupported head layout");
  const DecodeKernel kernel = decode_kernel_for(kv.dtype, heads, kv_heads, head_dim);
  const DecodeGrid grid = choose_decode_grid(kernel, heads, kv_heads, decode_tokens,
                                             device_multiprocessors(), batch.max_ranges);
  if (kernel == DecodeKernel::kTensorCores) {
    launch_decode_attention_mma(q, heads, kv_heads, head_dim, batch, decode_tokens, kv, scratch,
                                out, grid, stream);
  } else {
    launch_decode_attention_pipelined(q, heads, kv_heads, head_dim, batch, decode_tokens, kv,
                                      scratch, out, grid, stream);
  }
}

}  // namespace fp8llm::cuda
