// Hopper's and Ada's warp-level bf16 tensor-core product (mma.sync m16n8k16) and the packing of
// its operands. Lane l holds, of a 16x8 accumulator, rows l / 4 and l / 4 + 8, columns 2 (l % 4)
// and 2 (l % 4) + 1; of the 16x16 A operand, rows l / 4 and l / 4 + 8, columns 2 (l % 4) + {0, 1}
// and the same + 8; of the 16x8 B operand, rows 2 (l % 4) + {0, 1} and the same + 8, column l / 4.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace fp8llm::cuda::detail {

// d += a (16x16, row-major) * b (16x8, column-major), bf16 products summed in fp32.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two bf16 values in one register, `lo` in the low half (the lower column or row of the pair).
__device__ __forceinline__ uint32_t bf16_pair(__nv_bfloat16 lo, __nv_bfloat16 hi) {
  return static_cast<uint32_t>(__bfloat16_as_ushort(lo)) |
         (static_cast<uint32_t>(__bfloat16_as_ushort(hi)) << 16);
}

}  // namespace fp8llm::cuda::detail
