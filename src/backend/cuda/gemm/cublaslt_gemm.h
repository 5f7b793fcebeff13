// GEMMs through cuBLASLt, all of the form y[M,N] (row-major, bf16 or fp32) = x[M,K] * W[N,K]^T
// (+ bias[N], bf16). The fp32 output keeps the accumulator's value unrounded, for activations that
// are quantized to FP8 again downstream (docs/FP8.md: bf16 rounding there flips FP8 codes).
//
// cuBLAS is column-major: row-major y[M,N] is y^T, an N x M column-major matrix, so cuBLAS computes
// D = op(A) * B with A = W (stored column-major as K x N, transposed: the "TN" form FP8 needs),
// B = x (column-major K x M) and D = y^T. cuBLAS's m, n are our N and M.
//
// FP8 scaling (Hopper, cuBLAS >= 12.9):
//   row:   CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F on both: A scales = W's [N], B scales = x's
//   [M]. block: A = W with BLK128x128_32F (scales K-major, [ceil(N/128)][ld], ld a multiple of 4),
//          B = x with VEC128_32F (scales M-major: [ceil(K/128)][M]).
// Requirements (fp8_supports): K % 16 == 0 and N % 8 == 0 (16-byte leading dimensions of the FP8
// operands and of the bf16 output); block scaling also needs M and N multiples of 4.
// Plans (descriptors + the heuristic's algorithm) are cached per shape; not thread-safe.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "backend/cuda/runtime/cublaslt_handle.h"
#include "quant/fp8_scheme.h"

namespace fp8llm::cuda {

class CublasLtGemm {
 public:
  explicit CublasLtGemm(size_t workspace_bytes = kCublasLtWorkspaceBytes);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  static bool fp8_supports(Fp8Scheme scheme, int64_t m, int64_t n, int64_t k);

  // xs, ws in the layouts above (fp8_quant.h); ws_ld is the block scales' leading dimension.
  void gemm_fp8(Fp8Scheme scheme, const uint8_t* xq, const float* xs, int64_t m, const uint8_t* wq,
                const float* ws, int64_t ws_ld, int64_t n, int64_t k, const __nv_bfloat16* bias,
                __nv_bfloat16* y, cudaStream_t stream);
  void gemm_fp8(Fp8Scheme scheme, const uint8_t* xq, const float* xs, int64_t m, const uint8_t* wq,
                const float* ws, int64_t ws_ld, int64_t n, int64_t k, const __nv_bfloat16* bias,
                float* y, cudaStream_t stream);

  void gemm_bf16(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n, int64_t k,
                 const __nv_bfloat16* bias, __nv_bfloat16* y, cudaStream_t stream);
  void gemm_bf16(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n, int64_t k,
                 const __nv_bfloat16* bias, float* y, cudaStream_t stream);

  // Whether the last plan used for a call with a bias applied it in cuBLASLt's epilogue (true) or
  // in a separate kernel because no algorithm offered the epilogue with that scaling (false).
  bool last_bias_in_epilogue() const { return last_bias_in_epilogue_; }

 private:
  enum class Kind { Fp8Row, Fp8Block, Bf16 };
  struct Plan;
  // kind, m, n, k, bias?, fp32 output?, pointer alignments of A, B, D (capped at 256)
  using Key = std::tuple<int, int64_t, int64_t, int64_t, bool, bool, int, int, int>;
  struct Operands {
    const void* a;
    const void* b;
    void* d;
    const void* a_scale;
    const void* b_scale;
    const void* bias;
    bool f32_out;
  };

  void run(Kind kind, int64_t m, int64_t n, int64_t k, const Operands& ops, cudaStream_t stream);
  Plan& plan_for(Kind kind, int64_t m, int64_t n, int64_t k, const Operands& ops);
  void check_fp8(Fp8Scheme scheme, int64_t m, int64_t n, int64_t k, int64_t ws_ld) const;

  CublasLtHandle handle_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  bool last_bias_in_epilogue_ = true;
};

}  // namespace fp8llm::cuda
