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
  float* y = nullptr;                   // [m, ldy]
  int64_t ldy = 0;                      // floats from a token's outputs to the next's; 0: n
};

// Tokens the tensor-core kernel takes in one launch: eight a tile of mma columns, up to two tiles
// (four tiles, 32 tokens, ran at half cuBLASLt's speed on the H100: 178 registers a thread, and
// x read four times over). Each token's outputs are what it gets alone, bit for bit
// (fp8_gemv_tc.cu).
inline constexpr int64_t kFp8GemvTcMaxRows = 16;

// Each token's LoRA adapter (kernels/lora.h has the definition and the factors' layout) added to
// the tensor-core kernel's outputs in the same launch, at decode batch sizes where the adapter's
// own shrink and expand kernels would double the launches of a step:
//
//   y_s[t] += scale_slot * ((x[t] · A_{s,slot}ᵀ) · B_{s,slot}ᵀ),   slot = token_slot[t] (-1: none)
//
// The launch's first blocks compute x · Aᵀ, a block for each segment, token and piece of
// kFp8GemvLoraPiece columns, into `u`; the weights' blocks stream their tiles meanwhile and, before
// writing, wait for those blocks (the hardware starts a grid's blocks in order, so the ones waited
// for are already running) and add the pieces in order, then the product with B. A token's sums
// are the same operations whatever the batch holds.
inline constexpr int kFp8GemvLoraMaxRank = 64;
inline constexpr int64_t kFp8GemvLoraPiece = 2048;

struct Fp8GemvLora {
  const float* x = nullptr;                       // [m, k]: the values the codes xq quantize
  const int32_t* token_slot = nullptr;            // [m]
  const float* slot_scales = nullptr;             // per slot
  int64_t slot_stride = 0;                        // elements from one slot's factors to the next's
  int64_t max_rank = 0;                           // 1..kFp8GemvLoraMaxRank
  const __nv_bfloat16* a[kFp8GemvMaxGroup] = {};  // per segment, slot 0's A [max_rank, k]
  const __nv_bfloat16* b[kFp8GemvMaxGroup] = {};  // per segment, slot 0's B [n, max_rank]
  float* u = nullptr;       // fp8_gemv_lora_scratch_floats(count, m, k, max_rank)
  int32_t* done = nullptr;  // two counters, zero before the launch; the launch leaves them zero
};

int64_t fp8_gemv_lora_scratch_floats(int count, int64_t m, int64_t k, int64_t max_rank);

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
  // Set (lora.x non-null): each token's adapter joins the outputs. Only on the tensor cores, where
  // fp8_gemv_tc_supports(m, k), with max_rank <= kFp8GemvLoraMaxRank.
  Fp8GemvLora lora;
};

// Requires k % 16 == 0 and 16-byte aligned codes (what Fp8Linear checks before grouping), and for
// m > 1 tensor_cores and fp8_gemv_tc_supports.
void launch_fp8_gemv_group(const Fp8GemvGroupArgs& args, cudaStream_t stream);
bool fp8_gemv_group_supports(const uint8_t* xq, const uint8_t* wq, int64_t k);
// Whether the tensor-core kernel takes m tokens of K columns: K % 128 == 0, m <= 16, and one
// token's x within a block's default shared memory.
bool fp8_gemv_tc_supports(int64_t m, int64_t k);

}  // namespace fp8llm::cuda
