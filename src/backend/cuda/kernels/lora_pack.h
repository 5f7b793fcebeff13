// Copies adapter factors that are already in device memory (a training loop's tensors) into a
// slot's layout, converting BF16, F16 or F32 to bf16 (round to nearest even) and finding values
// that are not finite, in one launch for all of an adapter's tensors.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fp8llm::cuda {

enum class PackSource : int32_t { BF16, F16, F32 };

struct LoraPackItem {
  const void* src = nullptr;  // [rows, cols], contiguous
  PackSource dtype = PackSource::BF16;
  int64_t rows = 0, cols = 0;
  __nv_bfloat16* dst = nullptr;
  int64_t dst_ld = 0;  // elements from one destination row to the next
};

// `items` is in device memory; `first_bad` (device, set to INT32_MAX beforehand) receives the
// lowest index of an item holding a value that is not finite. Without `write`, only that check.
void launch_lora_pack(const LoraPackItem* items, int count, bool write, int32_t* first_bad,
                      cudaStream_t stream);

}  // namespace fp8llm::cuda
