#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "backend/cpu/kv_rows.h"
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

// One layout-independent core: `key(i, j, g, buf)` and `value(...)` return the fp32 row of KV head
// g at key position j for token i (a pointer into the cache, or into `buf` after widening), and
// `keys(i)` how many positions token i attends to.
template <typename Keys, typename KeyRows, typename ValueRows>
void attend(const float* q, int64_t t, int64_t heads, int64_t kv_heads, int64_t head_dim,
            int64_t max_keys, const Keys& keys, const KeyRows& key, const ValueRows& value,
            float* out) {
  if (kv_heads <= 0 || heads % kv_heads != 0)
    throw std::invalid_argument("attention: heads must be a multiple of kv_heads");
  if (t <= 0) return;
  const int64_t group = heads / kv_heads;
  const int64_t q_row = heads * head_dim;  // one token of q / out
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));

  // Work item k is (token slot k / heads, head k % heads). Later tokens attend to more positions,
  // so slots alternate between the earliest and latest remaining tokens (0, t-1, 1, t-2, ...):
  // every contiguous chunk parallel_for hands out then gets about the same amount of work.
  auto token_of_slot = [t](int64_t slot) { return slot % 2 == 0 ? slot / 2 : t - 1 - slot / 2; };
  const int64_t items = t * heads;
  const int64_t work_per_item = std::max<int64_t>(max_keys, 1) * head_dim * 2;
  const size_t grain =
      static_cast<size_t>(std::max<int64_t>(1, 32768 / std::max<int64_t>(work_per_item, 1)));

  parallel_for(static_cast<size_t>(items), grain, [&](size_t begin, size_t end) {
    std::vector<double> scores(static_cast<size_t>(max_keys));
    std::vector<double> acc(static_cast<size_t>(head_dim));
    std::vector<float> buf(static_cast<size_t>(head_dim));
    for (size_t k = begin; k < end; ++k) {
      const int64_t i = token_of_slot(static_cast<int64_t>(k) / heads);
      const int64_t h = static_cast<int64_t>(k) % heads;
      const int64_t g = h / group;
      const float* qh = q + i * q_row + h * head_dim;
      const int64_t n = keys(i);

      double max_score = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        scores[j] = dot(qh, key(i, j, g, buf.data()), head_dim) * scale;
        max_score = std::max(max_score, scores[j]);
      }
      double sum = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < n; ++j) {
        const double p = std::exp(scores[j] - max_score);
        sum += p;
        const float* vj = value(i, j, g, buf.data());
        for (int64_t d = 0; d < head_dim; ++d) acc[d] += p * vj[d];
      }
      float* o = out + i * q_row + h * head_dim;  // written only after q's row was read
      for (int64_t d = 0; d < head_dim; ++d) o[d] = static_cast<float>(acc[d] / sum);
    }
  });
}

}  // namespace

void attention(const float* q, int64_t t, int64_t heads, int64_t kv_heads, int64_t head_dim,
               const float* k_cache, const float* v_cache, int64_t past, float* out) {
  const int64_t kv_row = kv_heads * head_dim;  // one position of the cache
  const auto keys = [past](int64_t i) { return past + i + 1; };
  const auto rows = [&](const float* cache) {
    return [=](int64_t, int64_t j, int64_t g, float*) { return cache + j * kv_row + g * head_dim; };
  };
  attend(q, t, heads, kv_heads, head_dim, past + t, keys, rows(k_cache), rows(v_cache), out);
}

void paged_attention(const float* q, int64_t heads, const KvCacheSpec& spec, const KvLayer& kv,
                     const BatchView& b, float* out) {
  const auto keys = [&b](int64_t i) { return b.positions[i] + 1; };
  const auto slot = [&b](int64_t i, int64_t j) {
    const int32_t* table = b.block_tables + int64_t{b.token_seq[i]} * b.max_blocks;
    return int64_t{table[j / b.block_size]} * b.block_size + j % b.block_size;
  };
  const KvRows k_rows(spec, kv.k, kv.k_scale), v_rows(spec, kv.v, kv.v_scale);
  const auto key = [&](int64_t i, int64_t j, int64_t g, float* buf) {
    return k_rows.head(slot(i, j), g, buf);
  };
  const auto value = [&](int64_t i, int64_t j, int64_t g, float* buf) {
    return v_rows.head(slot(i, j), g, buf);
  };
  attend(q, b.num_tokens, heads, spec.kv_heads, spec.head_dim, b.max_position + 1, keys, key, value,
         out);
}

}  // namespace fp8llm::cpu
