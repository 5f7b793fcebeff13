// The FP8 GEMM for a few rows (decode). cuBLASLt has no block-scaled kernel at M = 1 (it needs
// M % 4 == 0) and its row-scaled one is slower there; this GEMV-shaped kernel reads every weight
// byte once, with 16-byte loads:
//
//   y[m, n] = sum_k deq(x)[m, k] * deq(W)[n, k]  (+ bias[n]),   0 <= m < M, 1 <= M <= 16
//
// Decoding has kernels of its own: for one token one sums on CUDA cores (a warp per one to four
// output rows, several 16-byte loads in flight per lane), and one on the FP8 tensor cores
// (fp8_gemv_tc.cu, when tensor_cores is set) takes up to 16 tokens, a token an mma column, for
// about the time of one. The general kernel's arithmetic runs on CUDA cores, so its time grows
// with M: past M = 2 it is slower than cuBLASLt (Fp8Linear chooses; docs/PERFORMANCE.md has the
// numbers).
//
// computed as sum over 128-column blocks of (sum of q*q products in fp32) * x scale * W scale, with
// fp32 accumulation; any K and N (16-byte loads when K % 16 == 0). Scales in the device layouts of
// fp8_quant.h, except that the activation block scales of this call may be a column slice of a
// larger [ceil(K/128)][xs_ld] array (xs points at the first row's entry).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "quant/fp8_scheme.h"

namespace fp8llm::cuda {

inline constexpr int64_t kFp8GemvMaxRows = 16;

struct Fp8GemvArgs {
  Fp8Scheme scheme = Fp8Scheme::Row;
  const uint8_t* xq = nullptr;  // [m, k] e4m3
  const float* xs = nullptr;    // row: [m]; block: element (kb, r) at xs[kb * xs_ld + r]
  int64_t xs_ld = 0;            // block only
  int64_t m = 0;                // 1..16
  const uint8_t* wq = nullptr;  // [n, k] e4m3
  const float* ws = nullptr;    // row: [n]; block: [ceil(n/128)][ws_ld]
  int64_t ws_ld = 0;            // block only
  int64_t n = 0;
  int64_t k = 0;
  const __nv_bfloat16* bias = nullptr;  // [n] or null
  // [m, ldy]: exactly one of the two is set (fp32 keeps the accumulator's value unrounded).
  __nv_bfloat16* y = nullptr;
  float* y_f32 = nullptr;
  int64_t ldy = 0;
  // M = 1 with fp32 output only: sum on the FP8 tensor cores (as Fp8GemvGroupArgs).
  bool tensor_cores = false;
};

void launch_fp8_gemv(const Fp8GemvArgs& args, cudaStream_t stream);

// Several weights that multiply the same one-token input (a layer's q, k and v; gate and up) in
// one launch: the decode step is paced by kernel launches as much as by bytes, so fewer, larger
// launches go faster. One x (quantized once), up to kFp8GemvMaxGroup weights of one scheme and K,
// each with its own scales, bias and fp32 output.
inline constexpr int kFp8GemvMaxGroup = 4;

struct Fp8GemvSegment {
  const uint8_t* wq = nullptr;  // [n, k] e4m3
  const float* ws = nullptr;    // row: [n]; block: [ceil(n/128)][ws_ld]
  int64_t ws_ld = 0;
  int64_t n = 0;
  const __nv_bfloat16* bias = nullptr;  // [n] or null
  float* y = nullptr;                   // [m, n]
};

// Tokens the tensor-core kernel takes in one launch: eight a tile of mma columns, up to two tiles
// (four tiles, 32 tokens, ran at half cuBLASLt's speed on the H100: 178 registers a thread, and
// x read four times over). Each token's outputs are what it gets alone, bit for bit
// (fp8_gemv_tc.cu).
inline constexpr int64_t kFp8GemvTcMaxRows = 16;

struct Fp8GemvGroupArgs {
  Fp8Scheme scheme = Fp8Scheme::Row;
  const uint8_t* xq = nullptr;  // [m, k] e4m3
  const float* xs = nullptr;    // row: [m]; block: element (kb, r) at xs[kb * xs_ld + r]
  int64_t xs_ld = 1;            // block only
  int64_t m = 1;                // tokens; above 1 only on the tensor cores (fp8_gemv_tc_supports)
  int64_t k = 0;
  int count = 0;
  Fp8GemvSegment seg[kFp8GemvMaxGroup];
  // Sum each 128-column block's products on the FP8 tensor cores and the blocks in fp32
  // (Fp8Accumulation::TensorCore; docs/FP8.md has how close that lands) where K % 128 == 0;
  // otherwise, and when false, the products are summed in fp32 on CUDA cores.
  bool tensor_cores = false;
};

// Requires k % 16 == 0 and 16-byte aligned codes (what Fp8Linear checks before grouping), and for
// m > 1 tensor_cores and fp8_gemv_tc_supports.
void launch_fp8_gemv_group(const Fp8GemvGroupArgs& args, cudaStream_t stream);
bool fp8_gemv_group_supports(const uint8_t* xq, const uint8_t* wq, int64_t k);
// Whether the tensor-core kernel takes m tokens of K columns: K % 128 == 0, m <= 16, and one
// token's x within a block's default shared memory.
bool fp8_gemv_tc_supports(int64_t m, int64_t k);

}  // namespace fp8llm::cuda
