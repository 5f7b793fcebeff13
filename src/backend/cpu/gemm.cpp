#include "backend/cpu/gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "quant/simd_clones.h"

namespace fp8llm::cpu {
namespace {

constexpr int64_t W = kGemmPanelWidth;
// Rows of x per micro-kernel call: 6 rows x 16 columns of accumulators fill 12 of the 16 AVX2
// registers.
constexpr int64_t kRowsPerKernel = 6;
// Rows of x per task, so that small N still spreads over the threads.
constexpr int64_t kRowsPerTask = 96;

// Eight floats as one value (a GCC/Clang vector extension); loads and stores go through memcpy.
typedef float Vec8 __attribute__((vector_size(32)));
static_assert(sizeof(Vec8) * 2 == W * sizeof(float));

// acc[m, 0:16] (+)= sum over kk of x[m, kk] * panel[kk, 0:16], for MT rows of x; y rows hold the
// running sums between panels of k.
template <int MT>
[[gnu::always_inline]] inline void micro_kernel(const float* x, int64_t ldx, const float* panel,
                                                int64_t depth, float* y, int64_t ldy, int64_t cols,
                                                bool accumulate) {
  // Accumulators are plain locals (never address-taken) so that they live in registers.
  Vec8 acc_lo[MT], acc_hi[MT];
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m) {
    float row[W] = {};
    if (accumulate) std::memcpy(row, y + m * ldy, static_cast<size_t>(cols) * sizeof(float));
    Vec8 lo, hi;
    std::memcpy(&lo, row, sizeof lo);
    std::memcpy(&hi, row + 8, sizeof hi);
    acc_lo[m] = lo;
    acc_hi[m] = hi;
  }
  for (int64_t kk = 0; kk < depth; ++kk) {
    Vec8 w_lo, w_hi;
    std::memcpy(&w_lo, panel + kk * W, sizeof w_lo);
    std::memcpy(&w_hi, panel + kk * W + 8, sizeof w_hi);
#pragma GCC unroll 8
    for (int m = 0; m < MT; ++m) {
      const float xv = x[m * ldx + kk];
      acc_lo[m] += xv * w_lo;
      acc_hi[m] += xv * w_hi;
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MT; ++m) {
    float row[W];
    const Vec8 lo = acc_lo[m], hi = acc_hi[m];
    std::memcpy(row, &lo, sizeof lo);
    std::memcpy(row + 8, &hi, sizeof hi);
    std::memcpy(y + m * ldy, row, static_cast<size_t>(cols) * sizeof(float));
  }
}

// One panel of W against `rows` rows of x (x and y point at the panel's first row and column).
// The AVX2 and baseline builds do the same multiplies and adds in the same order: same bits.
FP8LLM_SIMD_CLONES
void panel_product(const float* x, int64_t ldx, int64_t rows, const float* panel, int64_t depth,
                   float* y, int64_t ldy, int64_t cols, bool accumulate) {
  int64_t r = 0;
  for (; r + kRowsPerKernel <= rows; r += kRowsPerKernel) {
    micro_kernel<kRowsPerKernel>(x + r * ldx, ldx, panel, depth, y + r * ldy, ldy, cols,
                                 accumulate);
  }
  const float* xr = x + r * ldx;
  float* yr = y + r * ldy;
  switch (rows - r) {
    case 5:
      return micro_kernel<5>(xr, ldx, panel, depth, yr, ldy, cols, accumulate);
    case 4:
      return micro_kernel<4>(xr, ldx, panel, depth, yr, ldy, cols, accumulate);
    case 3:
      return micro_kernel<3>(xr, ldx, panel, depth, yr, ldy, cols, accumulate);
    case 2:
      return micro_kernel<2>(xr, ldx, panel, depth, yr, ldy, cols, accumulate);
    case 1:
      return micro_kernel<1>(xr, ldx, panel, depth, yr, ldy, cols, accumulate);
    default:
      return;
  }
}

}  // namespace

void gemm_xwt(const float* x, int64_t t, int64_t k, int64_t n, const PanelDecoder& decode,
              const float* bias, float* y) {
  if (t == 0 || n == 0) return;
  const int64_t panels = (n + W - 1) / W;
  const int64_t row_tasks = (t + kRowsPerTask - 1) / kRowsPerTask;
  parallel_for(static_cast<size_t>(panels * row_tasks), 1, [&](size_t begin, size_t end) {
    std::vector<float> panel(static_cast<size_t>(kGemmPanelDepth * W));
    for (auto task = static_cast<int64_t>(begin); task < static_cast<int64_t>(end); ++task) {
      const int64_t n0 = (task / row_tasks) * W, cols = std::min(W, n - n0);
      const int64_t t0 = (task % row_tasks) * kRowsPerTask, rows = std::min(kRowsPerTask, t - t0);
      float* yp = y + t0 * n + n0;
      if (k == 0) {
        for (int64_t r = 0; r < rows; ++r) std::fill_n(yp + r * n, cols, 0.0f);
      }
      for (int64_t k0 = 0; k0 < k; k0 += kGemmPanelDepth) {
        const int64_t depth = std::min(kGemmPanelDepth, k - k0);
        if (cols < W) std::fill(panel.begin(), panel.end(), 0.0f);
        decode(n0, cols, k0, depth, panel.data());
        panel_product(x + t0 * k + k0, k, rows, panel.data(), depth, yp, n, cols, k0 > 0);
      }
      if (bias != nullptr) {
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < cols; ++j) yp[r * n + j] += bias[n0 + j];
        }
      }
    }
  });
}

}  // namespace fp8llm::cpu
