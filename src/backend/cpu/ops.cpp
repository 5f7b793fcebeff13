#include "backend/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace fp8llm::cpu {
namespace {

// Elements worth one thread: below this, handing work to the pool costs more than it saves.
constexpr size_t kParallelElements = 16384;

size_t rows_per_chunk(int64_t row_size) {
  return std::max<size_t>(1,
                          kParallelElements / static_cast<size_t>(std::max<int64_t>(row_size, 1)));
}

void check_ids(std::span<const int32_t> ids, int64_t vocab) {
  for (const int32_t id : ids) {
    FP8LLM_CHECK(id >= 0 && id < vocab,
                 "embedding: token id {} is out of range for a vocabulary of {} tokens", id, vocab);
  }
}

template <typename Row>
void gather_rows(std::span<const int32_t> ids, int64_t hidden, float* out, Row copy_row) {
  parallel_for(ids.size(), rows_per_chunk(hidden), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) copy_row(ids[i], out + i * static_cast<size_t>(hidden));
  });
}

}  // namespace

void embedding_lookup(const uint16_t* table_bf16, int64_t vocab, int64_t hidden,
                      std::span<const int32_t> ids, float* out) {
  check_ids(ids, vocab);
  gather_rows(ids, hidden, out, [&](int32_t id, float* row) {
    const uint16_t* src = table_bf16 + static_cast<int64_t>(id) * hidden;
    for (int64_t j = 0; j < hidden; ++j) row[j] = bf16_to_f32(src[j]);
  });
}

void embedding_lookup(const float* table, int64_t vocab, int64_t hidden,
                      std::span<const int32_t> ids, float* out) {
  check_ids(ids, vocab);
  gather_rows(ids, hidden, out, [&](int32_t id, float* row) {
    std::copy_n(table + static_cast<int64_t>(id) * hidden, hidden, row);
  });
}

void rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps,
              float* out) {
  if (rows <= 0 || dim <= 0) return;
  parallel_for(static_cast<size_t>(rows), rows_per_chunk(dim), [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const float* xr = x + r * static_cast<size_t>(dim);
      float* o = out + r * static_cast<size_t>(dim);
      // transformers: variance = x.pow(2).mean(-1) (float32 squares, float32 mean), then
      // x * torch.rsqrt(variance + eps), then weight * that.
      double sum_sq = 0;
      for (int64_t d = 0; d < dim; ++d) {
        const float sq = xr[d] * xr[d];
        sum_sq += sq;
      }
      const float variance = static_cast<float>(sum_sq / static_cast<double>(dim));
      const float shifted = variance + eps;
      const float inv_rms = static_cast<float>(1.0 / std::sqrt(double{shifted}));
      for (int64_t d = 0; d < dim; ++d) {
        const float normed = xr[d] * inv_rms;
        o[d] = weight[d] * normed;
      }
    }
  });
}

void rms_norm(const float* x, int64_t rows, int64_t dim, const uint16_t* weight_bf16, float eps,
              float* out) {
  std::vector<float> weight(static_cast<size_t>(std::max<int64_t>(dim, 0)));
  for (size_t d = 0; d < weight.size(); ++d) weight[d] = bf16_to_f32(weight_bf16[d]);
  rms_norm(x, rows, dim, weight.data(), eps, out);
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  if (n <= 0) return;
  parallel_for(static_cast<size_t>(n), kParallelElements, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const float g = gate[i];
      const float silu = g / (1.0f + std::exp(-g));
      out[i] = silu * up[i];
    }
  });
}

void add_inplace(float* x, const float* y, int64_t n) {
  if (n <= 0) return;
  parallel_for(static_cast<size_t>(n), 4 * kParallelElements, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) x[i] += y[i];
  });
}

}  // namespace fp8llm::cpu
