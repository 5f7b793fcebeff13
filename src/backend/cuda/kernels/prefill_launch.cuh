// The launch of the prompt attention kernel (prefill_attention_mma.cu): a block of 128 threads for
// each 64 rows and head, the shared memory it needs, and the dispatch over the cache's element
// type and the head size.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "backend/cuda/kernels/kv_elements.cuh"
#include "backend/cuda/kernels/paged_attention.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "fp8llm/modes.h"

namespace fp8llm::cuda::detail {

inline constexpr int kPrefillRows = 64;      // query rows of a block
inline constexpr int kPrefillThreads = 128;  // four warps, 16 rows each

// Launches kernel_of.template operator()<T, D>() with bytes_of.template operator()<D>() bytes of
// dynamic shared memory, for the cache's element type and head size 64 or 128 (the caller
// checked), rows [first_token, b.tokens), scale 1/sqrt(D).
template <typename KernelOf, typename BytesOf>
void launch_prefill_kernel(KernelOf&& kernel_of, BytesOf&& bytes_of, const float* q, int64_t heads,
                           int64_t kv_heads, int64_t head_dim, const PagedBatch& b,
                           int64_t first_token, const PagedKv& kv, float* out,
                           cudaStream_t stream) {
  const auto typed = [&]<typename T, int D>() {
    const auto kernel = kernel_of.template operator()<T, D>();
    const size_t bytes = bytes_of.template operator()<D>();
    // Above 48 KiB a kernel must opt in. The attribute belongs to the current device: once per
    // kernel holds while a process drives one GPU (ranks on several GPUs must set it on each).
    static const bool opted_in = [&] {
      CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(bytes)));
      return true;
    }();
    (void)opted_in;
    const int64_t rows = b.tokens - first_token;
    const dim3 grid(static_cast<unsigned>((rows + kPrefillRows - 1) / kPrefillRows),
                    static_cast<unsigned>(heads));
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    kernel<<<grid, kPrefillThreads, bytes, stream>>>(
        q, heads, kv_heads, first_token, b.tokens, b.positions, b.token_seq, b.block_tables,
        b.max_blocks, kv.block_size, static_cast<const T*>(kv.k), static_cast<const T*>(kv.v),
        kv.k_scale, kv.v_scale, scale, out);
    CUDA_CHECK_LAUNCH();
  };
  const auto by_size = [&]<typename T>() {
    if (head_dim == 64) {
      typed.template operator()<T, 64>();
    } else {
      typed.template operator()<T, 128>();
    }
  };
  with_kv_element_type(kv.dtype, "launch_prefill_attention", by_size);
}

}  // namespace fp8llm::cuda::detail
