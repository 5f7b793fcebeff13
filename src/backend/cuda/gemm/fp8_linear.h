// An FP8 linear layer on the device: y[M,N] = x[M,K] * W[N,K]^T (+ bias), with x in bf16 or fp32,
// quantized on the fly (per token, or per token per 128 columns), W already quantized, and y in the
// type of x.
//
// Path: up to kFp8GemvTcMaxRows rows of fp32 output, the tensor-core GEMV (fp8_gemv.h: one launch
// per group, a token an mma column); otherwise cuBLASLt for M >= kFp8LinearMinCublasRows where its
// shape rules allow (CublasLtGemm::fp8_supports; block scales with a leading dimension that is a
// multiple of 4), the small-M kernel (fp8_gemv.h) otherwise.
// Block scaling in cuBLASLt also needs M % 4 == 0: the last M % 4 rows then go to the small-M
// kernel, with their activation scales kept in a separate array so that each part has the layout
// its kernel reads.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <optional>
#include <span>

#include "backend/cuda/gemm/cublaslt_gemm.h"
#include "backend/cuda/kernels/fp8_gemv.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "quant/fp8_scheme.h"

namespace fp8llm::cuda {

// cuBLASLt streams the weights once whatever M is (1.05x to 2.5x the small-M kernel's M = 1 time
// at Llama-3-8B shapes), while the small-M kernel runs on CUDA cores and its time grows with
// M (1.5x at M = 2, about 3x at M = 3). Measured on H100 (docs/PERFORMANCE.md): the kernel wins at
// M = 1, the two are even at M = 2 over a whole layer, cuBLASLt wins from M = 3. Block scaling in
// cuBLASLt also needs M % 4 == 0, so block mode switches at M = 4.
inline constexpr int64_t kFp8LinearMinCublasRows = 3;

// Up to this many rows forward_group multiplies weights that lie back to back in memory (a
// layer's q, k and v: arena_layout.h) as one weight, into a scratch whose columns it then copies
// out. cuBLASLt's FP8 GEMM takes 13-16 us at any of their widths up to there, so three calls
// cost nearly three times one (H100, q, k and v of the 8B shape, `bench_gemm --groups`, the copy
// out included: 47.6 -> 20.5 us at 16 rows, 50.0 -> 39.4 at 256, but 55.1 -> 64.1 at 512). Gate
// and up, each 14,336 wide, gain nothing from it at any M (53.8 -> 54.4 us at 4 rows, 72.9 ->
// 128.9 at 256).
inline constexpr int64_t kFp8JoinMaxRows = 256;
// Without the copy out (forward_group_joined: the consumer reads the columns in place), decode
// steps of up to this many rows join too (docs/PERFORMANCE.md).
inline constexpr int64_t kFp8JoinInPlaceMaxRows = 1024;

// A linear layer's weight on the device, in the layouts of fp8_quant.h.
struct Fp8DeviceWeight {
  Fp8Scheme scheme = Fp8Scheme::Row;
  const uint8_t* q = nullptr;  // [n, k] e4m3
  const float* scales = nullptr;
  int64_t scale_ld = 0;  // block: leading dimension of the scales
  int64_t n = 0;
  int64_t k = 0;
  const __nv_bfloat16* bias = nullptr;  // [n] or null
};

// Which kernels multiply when cuBLASLt could: its FP8 tensor-core GEMMs (fast; Hopper sums FP8
// products with about 14 bits, about 1e-4 relative error), or the small-M kernel in chunks of rows
// (every product summed in fp32; slow for long prompts).
enum class Fp8Accumulation { TensorCore, Fp32 };

class Fp8Linear {
 public:
  explicit Fp8Linear(CublasLtGemm& gemm, Fp8Accumulation accumulation = Fp8Accumulation::TensorCore)
      : gemm_(gemm), accumulation_(accumulation) {}

  void forward(const Fp8DeviceWeight& w, const __nv_bfloat16* x, int64_t m, __nv_bfloat16* y,
               cudaStream_t stream);
  void forward(const Fp8DeviceWeight& w, const float* x, int64_t m, float* y, cudaStream_t stream);

  // Rows x[m, k] through several weights that share them (q, k and v; gate and up), each output
  // what forward() gives. One row: x is quantized once and one kernel computes every output
  // (fp8_gemv.h), where group_supports allows. Several: x is quantized once for all the weights
  // (the same bytes forward() would make for each), where they share the scheme, K and the split
  // between cuBLASLt and the small-M kernel; as one weight where they lie back to back and fit the
  // joined scratch (kFp8JoinMaxRows). Otherwise forward() per weight.
  // With `lora`, each token's adapter joins the outputs in the same kernel (fp8_gemv.h); only
  // where takes_lora(ws, m).
  void forward_group(std::span<const Fp8DeviceWeight* const> ws, const float* x, int64_t m,
                     std::span<float* const> ys, cudaStream_t stream,
                     const Fp8GemvLora* lora = nullptr);
  static bool group_supports(const Fp8DeviceWeight& first, const Fp8DeviceWeight& w);
  // Whether a group call of m rows goes to the tensor-core GEMV, which can add LoRA adapters.
  bool takes_lora(std::span<const Fp8DeviceWeight* const> ws, int64_t m) const;

  // Rows of an M-row call that cuBLASLt takes where it multiplies (the rest go to the small-M
  // kernel); with fp32 outputs on the tensor cores, calls of up to kFp8GemvTcMaxRows rows go to
  // the tensor-core GEMV instead (gemm_rows).
  static int64_t cublaslt_rows(const Fp8DeviceWeight& w, int64_t m);
  Fp8Accumulation accumulation() const { return accumulation_; }
  // Sizes the scratch for inputs of up to `rows` x `k` once, so that it never moves afterwards: a
  // recorded pass (graph.h) keeps its address.
  void reserve(int64_t rows, int64_t k);
  // Joins groups of up to `rows` rows (at most kFp8JoinInPlaceMaxRows, and kFp8JoinMaxRows where
  // the outputs are copied out; 0: never) of up to `n` outputs in all, and sizes their scratch for
  // that once.
  void reserve_joined(int64_t rows, int64_t n);
  // Group calls that went through a joined weight so far (what the tests check the path by).
  int64_t joined_calls() const { return joined_calls_; }

  // Activations quantized for a call, in Fp8Linear's scratch: codes q[m, k]; rows [0, m_lt) go to
  // cuBLASLt with scales s1, the rest to the small-M kernel with scales s2 (each part in the
  // layout its kernel reads: fp8_quant.h, with that part's row count).
  struct QuantizedInput {
    Fp8Scheme scheme = Fp8Scheme::Row;
    uint8_t* q = nullptr;
    float* s1 = nullptr;
    float* s2 = nullptr;
    int64_t m = 0, m_lt = 0, k = 0;
  };
  // Room for m rows quantized once for every weight of `ws`, or nothing where they do not share
  // the scheme, K and the split. A producer that quantizes as it computes (a fused norm,
  // fused_quant.h) writes there; forward_group_quantized then multiplies, until the next call
  // that uses the scratch.
  std::optional<QuantizedInput> reserve_group_input(std::span<const Fp8DeviceWeight* const> ws,
                                                    int64_t m);
  void forward_group_quantized(std::span<const Fp8DeviceWeight* const> ws, const QuantizedInput& in,
                               std::span<float* const> ys, cudaStream_t stream,
                               const Fp8GemvLora* lora = nullptr);
  // x[m, k] quantized once for every weight of `ws` (what forward_group does first), or nothing
  // (and no work) where reserve_group_input gives nothing.
  std::optional<QuantizedInput> quantize_group_input(std::span<const Fp8DeviceWeight* const> ws,
                                                     const float* x, int64_t m,
                                                     cudaStream_t stream);

  // A joined group's outputs where the GEMM left them: row r of weight i at y + r * ld + the sum
  // of the n of the weights before it.
  struct JoinedOutput {
    float* y = nullptr;
    int64_t ld = 0;
  };
  // Whether m rows through `ws`, quantized for them (reserve_group_input), take the joined path.
  bool joins_rows(std::span<const Fp8DeviceWeight* const> ws, int64_t m) const;
  // Where forward_group_quantized would multiply `ws` as one weight (weights back to back, rows
  // on cuBLASLt, every row within the joined scratch), multiplies them so, each row the values
  // forward_group_quantized gives it, and returns where they are (valid until the next call that
  // multiplies): a consumer reads (or adds to) the columns in place, and the copy to each output
  // is saved.
  // Nothing, and no work, otherwise.
  std::optional<JoinedOutput> forward_group_joined(std::span<const Fp8DeviceWeight* const> ws,
                                                   const QuantizedInput& in, cudaStream_t stream);

 private:
  // Rows of an M-row call that go to cuBLASLt: none up to eight rows of fp32 output on the
  // tensor cores (the tensor-core GEMV reads the weights once as cuBLASLt does, without its
  // 13 us floor), none with --fp8-gemm fp32.
  int64_t gemm_rows(const Fp8DeviceWeight& w, int64_t m, bool f32_out) const;
  bool gemv_groups(std::span<const Fp8DeviceWeight* const> ws, int64_t m) const;
  // The weights as one [sum of n, k] weight, where each starts where the one before ends (codes
  // and scales) and they share scheme, K and scale layout; nothing otherwise.
  static std::optional<Fp8DeviceWeight> joined(std::span<const Fp8DeviceWeight* const> ws);
  QuantizedInput reserve_input(Fp8Scheme scheme, int64_t m, int64_t k, int64_t m_lt);
  template <typename T>
  void quantize_into(const QuantizedInput& in, const T* x, cudaStream_t stream);
  template <typename T>
  void multiply(const Fp8DeviceWeight& w, const QuantizedInput& in, T* y, cudaStream_t stream);
  // Rows [m_lt, m) of multiply: the small-M kernel's, row r at y + r * ldy (0: w.n).
  template <typename T>
  void multiply_tail(const Fp8DeviceWeight& w, const QuantizedInput& in, T* y, cudaStream_t stream,
                     int64_t ldy = 0);
  // The joined weight of `ws` where forward_group_joined applies to `in`.
  std::optional<Fp8DeviceWeight> joins(std::span<const Fp8DeviceWeight* const> ws,
                                       const QuantizedInput& in) const;
  template <typename T>
  void forward_impl(const Fp8DeviceWeight& w, const T* x, int64_t m, T* y, cudaStream_t stream);

  CublasLtGemm& gemm_;
  Fp8Accumulation accumulation_;
  DeviceBuffer scratch_;  // quantized activations and their scales
  DeviceBuffer joined_;   // a joined group's outputs, [rows][sum of n] fp32
  int64_t joined_rows_ = 0;
  int64_t joined_calls_ = 0;
};

}  // namespace fp8llm::cuda
