#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "model/top_token.h"

namespace fp8llm {

Sampler::Sampler(SamplingParams params) : params_(params), rng_(params.seed) {
  FP8LLM_CHECK(params_.temperature >= 0 && std::isfinite(params_.temperature),
               "temperature must be >= 0 (got {})", params_.temperature);
  FP8LLM_CHECK(params_.top_k >= 0, "top_k must be >= 0 (got {})", params_.top_k);
  FP8LLM_CHECK(params_.top_p > 0 && params_.top_p <= 1, "top_p must be in (0, 1] (got {})",
               params_.top_p);
  FP8LLM_CHECK(params_.min_p >= 0 && params_.min_p <= 1, "min_p must be in [0, 1] (got {})",
               params_.min_p);
  FP8LLM_CHECK(params_.repetition_penalty > 0, "repetition_penalty must be > 0 (got {})",
               params_.repetition_penalty);
}

bool Sampler::temperature_only() const {
  return params_.temperature > 0.0f && params_.top_k == 0 && params_.top_p == 1.0f &&
         params_.min_p == 0.0f && params_.repetition_penalty == 1.0f;
}

double Sampler::uniform() {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

SampledToken Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  FP8LLM_CHECK(!logits.empty(), "sample: empty logits");
  work_.assign(logits.begin(), logits.end());
  if (params_.repetition_penalty != 1.0f) {
    // Once per distinct token, as in transformers (a token seen twice is not penalized twice).
    std::vector<int32_t> seen(history.begin(), history.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t id : seen) {
      if (id < 0 || static_cast<size_t>(id) >= work_.size()) continue;
      float& v = work_[static_cast<size_t>(id)];
      v = v > 0 ? v / params_.repetition_penalty : v * params_.repetition_penalty;
    }
  }

  int32_t chosen;
  if (params_.temperature == 0.0f) {
    chosen = argmax(work_);
  } else {
    const size_t n = work_.size();
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), 0);
    // Candidates sorted by logit, highest first (stable on ties for determinism).
    size_t keep = n;
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n)
      keep = static_cast<size_t>(params_.top_k);
    auto by_logit = [&](int32_t a, int32_t b) {
      return work_[static_cast<size_t>(a)] > work_[static_cast<size_t>(b)] ||
             (work_[static_cast<size_t>(a)] == work_[static_cast<size_t>(b)] && a < b);
    };
    if (keep < n) {
      std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(keep),
                        order_.end(), by_logit);
    } else {
      std::sort(order_.begin(), order_.end(), by_logit);
    }
    // Softmax over the candidates at this temperature.
    std::vector<double> p(keep);
    const double max = work_[static_cast<size_t>(order_[0])] / params_.temperature;
    double sum = 0;
    for (size_t i = 0; i < keep; ++i) {
      p[i] = std::exp(work_[static_cast<size_t>(order_[i])] / params_.temperature - max);
      sum += p[i];
    }
    for (double& v : p) v /= sum;
    // min-p: drop tokens less likely than min_p times the most likely one.
    if (params_.min_p > 0) {
      const double cut = params_.min_p * p[0];
      size_t k = 1;
      while (k < keep && p[k] >= cut) ++k;
      keep = k;
    }
    // top-p: the smallest prefix whose mass reaches top_p.
    if (params_.top_p < 1.0f) {
      double mass = 0;
      size_t k = 0;
      while (k < keep) {
        mass += p[k++];
        if (mass >= params_.top_p) break;
      }
      keep = k;
    }
    double total = 0;
    for (size_t i = 0; i < keep; ++i) total += p[i];
    const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
    double acc = 0;
    chosen = order_[keep - 1];
    for (size_t i = 0; i < keep; ++i) {
      acc += p[i];
      if (r < acc) {
        chosen = order_[i];
        break;
      }
    }
  }
  return {chosen, log_softmax_at(logits, chosen)};
}

}  // namespace fp8llm
