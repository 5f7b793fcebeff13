// The fp32 matrix product behind every CPU linear layer: y[T,N] = x[T,K] · W[N,K]^T (+ bias), with
// W decoded on the fly, one panel of kGemmPanelWidth output rows and up to kGemmPanelDepth columns
// at a time, from whatever form it is stored in (FP8 with scales, BF16, F32).
//
// Each output is one float32 sum taken in k order, then the bias added: the result does not depend
// on the thread count or on how the work is split.
#pragma once

#include <cstdint>
#include <functional>

namespace fp8llm::cpu {

inline constexpr int64_t kGemmPanelWidth = 16;   // output features per panel
inline constexpr int64_t kGemmPanelDepth = 256;  // input features per panel (a multiple of 128)

// Writes panel[kk * kGemmPanelWidth + j] = W[n0 + j, k0 + kk] as float32 for j < rows and
// kk < depth. Columns j >= rows are zeroed by the caller beforehand.
using PanelDecoder =
    std::function<void(int64_t n0, int64_t rows, int64_t k0, int64_t depth, float* panel)>;

// y[t, n] = sum_k x[t, k] * W[n, k] (+ bias[n]); bias may be null. Multi-threaded.
void gemm_xwt(const float* x, int64_t t, int64_t k, int64_t n, const PanelDecoder& decode,
              const float* bias, float* y);

}  // namespace fp8llm::cpu
