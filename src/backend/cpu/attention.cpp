#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/thread_pool.h"

namespace fp8llm::cpu {
namespace {

// Four running sums keep the additions independent, so the loop is not bound by add latency.
double dot(const float* a, const float* b, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += double{a[i]} * b[i];
    s1 += double{a[i + 1]} * b[i + 1];
    s2 += double{a[i + 2]} * b[i + 2];
    s3 += double{a[i + 3]} * b[i + 3];
  }
  for (; i < n; ++i) s0 += double{a[i]} * b[i];
  return (s0 + s1) + (s2 + s3);
}

}  // namespace

void attention(const float* q, int64_t t, int64_t heads, int64_t kv_heads, int64_t head_dim,
               const float* k_cache, const float* v_cache, int64_t past, float* out) {
  if (kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("attention: heads must be a multiple of kv_heads");
  if (t <= 0) return;
  const int64_t group = heads / kv_heads;
  const int64_t q_row = heads * head_dim;      // one token of q / out
  const int64_t kv_row = kv_heads * head_dim;  // one position of the cache
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));

  // Work item k is (token slot k / heads, head k % heads). Later tokens attend to more positions,
  // so slots alternate between the earliest and latest remaining tokens (0, t-1, 1, t-2, ...):
  // every contiguous chunk parallel_for hands out then gets about the same amount of work.
  auto token_of_slot = [t](int64_t slot) { return slot % 2 == 0 ? slot / 2 : t - 1 - slot / 2; };
  const int64_t items = t * heads;
  const int64_t work_per_item = (past + (t + 1) / 2) * head_dim * 2;
  const size_t grain =
      static_cast<size_t>(std::max<int64_t>(1, 32768 / std::max<int64_t>(work_per_item, 1)));

  parallel_for(static_cast<size_t>(items), grain, [&](size_t begin, size_t end) {
    std::vector<double> scores(static_cast<size_t>(past + t));
    std::vector<double> acc(static_cast<size_t>(head_dim));
    for (size_t k = begin; k < end; ++k) {
      const int64_t i = token_of_slot(static_cast<int64_t>(k) / heads);
      const int64_t h = static_cast<int64_t>(k) % heads;
      const int64_t g = h / group;
      const float* qh = q + i * q_row + h * head_dim;
      const float* kh = k_cache + g * head_dim;
      const float* vh = v_cache + g * head_dim;
      const int64_t n = past + i + 1;  // causal: positions 0 .. past + i

      double max_score = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        scores[j] = dot(qh, kh + j * kv_row, head_dim) * scale;
        max_score = std::max(max_score, scores[j]);
      }
      double sum = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < n; ++j) {
        const double p = std::exp(scores[j] - max_score);
        sum += p;
        const float* vj = vh + j * kv_row;
        for (int64_t d = 0; d < head_dim; ++d) acc[d] += p * vj[d];
      }
      float* o = out + i * q_row + h * head_dim;  // written only after q's row was read
      for (int64_t d = 0; d < head_dim; ++d) o[d] = static_cast<float>(acc[d] / sum);
    }
  });
}

}  // namespace fp8llm::cpu
