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
  const bool mma = (dtype == KvCacheDtype::BF16 || dtype == KvCacheDtype::Fp8) &&
                   (head_dim == 64 || head_dim == 128) && kv_heads > 0 && heads % kv_heads == 0 &&
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
  DecodeGrid grid;
  int64_t per_sm = detail::kDecodeCudaCoreBlocksPerSm;
  if (mma) {
    // Few blocks: three steps a block in shared memory, two blocks an SM; many: two steps, three
    // blocks an SM, so that more blocks hide each one's start and merges (bench_attention, H100:
    // 64 x 1,024 keys 158 -> 131 us with three, 256 x 192 114 -> 140).
    grid.stages = blocks < 4 * multiprocessors ? 3 : 2;
    per_sm = detail::decode_mma_blocks_per_sm(grid.stages);
  }
  // Two blocks an SM or more: one block a (token, KV head) walking its ranges was the fastest
  // at batch 64 and 256 (bench_attention --sweep, H100); more blocks only added waves.
  if (blocks >= 2 * multiprocessors) return grid;
  // Fewer: enough range blocks for one wave of resident blocks.
  const int64_t target = multiprocessors * per_sm;
  const int64_t z = (target + blocks - 1) / blocks;
  grid.range_blocks = z < cap ? z : cap;
  return grid;
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
