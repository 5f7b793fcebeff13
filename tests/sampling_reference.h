// The sampling definition by brute force, for tests of the host sampler and of the device's: rank
// every token (higher logit first, then lower id); the candidates are the top_k (or all); weights
// are exp((logit - max) * (1 / T)) in float; min-p keeps weights >= min_p; top-p keeps the fewest
// top-ranked candidates whose weight reaches top_p of the candidates' total; a draw r in
// [0, kept total) walks the kept tokens in id order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace fp8llm::test {

struct KeptTokens {
  std::vector<int32_t> ids;  // ascending
  std::vector<double> weights;
  double total = 0;

  int32_t pick(double r) const {
    double acc = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (r < (acc += weights[i])) return ids[i];
    }
    return ids.back();
  }
  // Whether r lies within `tolerance` (relative to the total) of a boundary between two kept
  // tokens, where summing in another order may pick the neighbour.
  bool near_boundary(double r, double tolerance) const {
    double acc = 0;
    for (const double w : weights) {
      acc += w;
      if (std::fabs(acc - r) <= tolerance * total) return true;
    }
    return false;
  }
};

inline KeptTokens reference_kept(const std::vector<float>& logits, float temperature, int top_k,
                                 float top_p, float min_p) {
  const size_t n = logits.size();
  std::vector<int32_t> rank(n);
  std::iota(rank.begin(), rank.end(), 0);
  std::sort(rank.begin(), rank.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  const float top = logits[rank[0]];
  const float inv_t = 1.0f / temperature;
  size_t keep = top_k > 0 ? std::min<size_t>(n, top_k) : n;
  std::vector<double> w(n);
  double sum = 0;
  for (size_t r = 0; r < keep; ++r) {
    w[rank[r]] = std::exp((logits[rank[r]] - top) * inv_t);
    sum += w[rank[r]];
  }
  if (min_p > 0) {
    size_t k = 0;
    while (k < keep && w[rank[k]] >= min_p) ++k;
    keep = std::max<size_t>(k, 1);
  }
  if (top_p < 1.0f) {
    double mass = 0;
    size_t k = 0;
    while (k < keep && (mass += w[rank[k++]]) < top_p * sum) {
    }
    keep = k;
  }
  KeptTokens kept;
  kept.ids.assign(rank.begin(), rank.begin() + static_cast<std::ptrdiff_t>(keep));
  std::sort(kept.ids.begin(), kept.ids.end());
  for (const int32_t id : kept.ids) {
    kept.weights.push_back(w[id]);
    kept.total += w[id];
  }
  return kept;
}

}  // namespace fp8llm::test
