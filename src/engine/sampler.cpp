#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "model/top_token.h"

namespace fp8llm {

void check_sampling_params(const SamplingParams& p) {
  FP8LLM_CHECK(p.n >= 1 && p.n <= 1024, "n must be in [1, 1024] (got {})", p.n);
  FP8LLM_CHECK(p.temperature >= 0 && std::isfinite(p.temperature),
               "temperature must be >= 0 (got {})", p.temperature);
  FP8LLM_CHECK(p.top_k >= -1, "top_k must be >= 0, or -1 for off (got {})", p.top_k);
  FP8LLM_CHECK(p.top_p > 0 && p.top_p <= 1, "top_p must be in (0, 1] (got {})", p.top_p);
  FP8LLM_CHECK(p.min_p >= 0 && p.min_p <= 1, "min_p must be in [0, 1] (got {})", p.min_p);
  FP8LLM_CHECK(p.repetition_penalty > 0 && std::isfinite(p.repetition_penalty),
               "repetition_penalty must be > 0 (got {})", p.repetition_penalty);
  FP8LLM_CHECK(p.presence_penalty >= -2 && p.presence_penalty <= 2,
               "presence_penalty must be in [-2, 2] (got {})", p.presence_penalty);
  FP8LLM_CHECK(p.frequency_penalty >= -2 && p.frequency_penalty <= 2,
               "frequency_penalty must be in [-2, 2] (got {})", p.frequency_penalty);
  FP8LLM_CHECK(p.max_tokens >= 1, "max_tokens must be >= 1 (got {})", p.max_tokens);
  FP8LLM_CHECK(p.min_tokens >= 0 && p.min_tokens <= p.max_tokens,
               "min_tokens must be in [0, max_tokens = {}] (got {})", p.max_tokens, p.min_tokens);
  FP8LLM_CHECK(p.logprobs >= -1 && p.logprobs <= kMaxLogprobs,
               "logprobs must be in [0, {}] (got {})", kMaxLogprobs, p.logprobs);
  FP8LLM_CHECK(p.prompt_logprobs >= -1 && p.prompt_logprobs <= kMaxLogprobs,
               "prompt_logprobs must be in [0, {}] (got {})", kMaxLogprobs, p.prompt_logprobs);
  for (int32_t id : p.stop_token_ids)
    FP8LLM_CHECK(id >= 0, "stop_token_ids: {} is not a token id", id);
  for (const auto& [id, bias] : p.logit_bias) {
    FP8LLM_CHECK(id >= 0, "logit_bias: {} is not a token id", id);
    FP8LLM_CHECK(bias >= -100 && bias <= 100,
                 "logit_bias: the bias of token {} must be in [-100, 100] (got {})", id, bias);
  }
}

uint64_t sample_seed(uint64_t request_seed, int index) {
  if (index == 0) return request_seed;
  uint64_t x = request_seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(index);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t random_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

namespace {

uint64_t seed_of(const SamplingParams& params) {
  return params.seed ? *params.seed : random_seed();
}

// The sampler keeps n, max_tokens and the rest unchecked for the old one-sequence path, where
// they do not apply; everything that shapes a draw is checked.
SamplingParams checked(SamplingParams p) {
  SamplingParams shape_only = p;
  shape_only.n = 1;
  shape_only.max_tokens = 1;
  shape_only.min_tokens = 0;
  shape_only.logprobs = -1;
  check_sampling_params(shape_only);
  return p;
}

}  // namespace

Sampler::Sampler(SamplingParams params) : Sampler(params, seed_of(params)) {}

Sampler::Sampler(SamplingParams params, uint64_t seed) : params_(checked(params)), rng_(seed) {}

bool Sampler::draws_from_logits_alone() const {
  return params_.repetition_penalty == 1.0f && params_.presence_penalty == 0.0f &&
         params_.frequency_penalty == 0.0f && params_.logit_bias.empty();
}

SampleShape Sampler::shape() const {
  return {.temperature = params_.temperature,
          .top_k = std::max(params_.top_k, 0),
          .top_p = params_.top_p,
          .min_p = params_.min_p};
}

double Sampler::uniform() {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

SampledToken Sampler::sample(std::span<const float> logits, std::span<const int32_t> history,
                             std::span<const int32_t> generated, std::span<const int32_t> banned) {
  FP8LLM_CHECK(!logits.empty(), "sample: empty logits");
  work_.assign(logits.begin(), logits.end());
  for (const auto& [id, bias] : params_.logit_bias) {
    if (id >= 0 && static_cast<size_t>(id) < work_.size()) work_[static_cast<size_t>(id)] += bias;
  }
  for (int32_t id : banned) {
    if (id >= 0 && static_cast<size_t>(id) < work_.size())
      work_[static_cast<size_t>(id)] = -std::numeric_limits<float>::infinity();
  }
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
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    // OpenAI's definition, over the generated tokens only (as vLLM applies it).
    std::vector<int32_t> ids(generated.begin(), generated.end());
    std::sort(ids.begin(), ids.end());
    for (size_t i = 0; i < ids.size();) {
      size_t j = i;
      while (j < ids.size() && ids[j] == ids[i]) ++j;
      if (ids[i] >= 0 && static_cast<size_t>(ids[i]) < work_.size()) {
        work_[static_cast<size_t>(ids[i])] -=
            params_.frequency_penalty * static_cast<float>(j - i) + params_.presence_penalty;
      }
      i = j;
    }
  }

  const int32_t chosen = params_.temperature == 0.0f ? argmax(work_) : draw();
  return {chosen, log_softmax_at(logits, chosen)};
}

bool Sampler::more_likely(int32_t a, int32_t b) const {
  const float wa = work_[static_cast<size_t>(a)], wb = work_[static_cast<size_t>(b)];
  return wa > wb || (wa == wb && a < b);
}

// Every step below selects or partitions (linear time); nothing sorts the vocabulary, which costs
// milliseconds per token at 128k tokens (bench/bench_sampler.cpp).
int32_t Sampler::draw() {
  const size_t n = work_.size();
  const float inv_t = 1.0f / params_.temperature;
  const float top = *std::max_element(work_.begin(), work_.end());
  const auto by_rank = [this](int32_t a, int32_t b) { return more_likely(a, b); };
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
  const auto at = [this](size_t rank) {
    return order_.begin() + static_cast<std::ptrdiff_t>(rank);
  };

  // Candidates: the token ids order_[0, keep), as a set (unordered within it).
  size_t keep = n;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    keep = static_cast<size_t>(params_.top_k);
    std::nth_element(order_.begin(), at(keep - 1), order_.end(), by_rank);
  }
  // Their probabilities at this temperature, unnormalized: the most likely token has weight 1.
  weight_.assign(n, 0.0);
  double sum = 0;
  for (size_t r = 0; r < keep; ++r) {
    const auto id = static_cast<size_t>(order_[r]);
    weight_[id] = std::exp((work_[id] - top) * inv_t);
    sum += weight_[id];
  }
  const auto w = [this](int32_t id) { return weight_[static_cast<size_t>(id)]; };
  // min-p: drop tokens less likely than min_p times the most likely one.
  if (params_.min_p > 0) {
    const auto cut = std::partition(order_.begin(), at(keep),
                                    [&](int32_t id) { return w(id) >= params_.min_p; });
    keep = std::max<size_t>(static_cast<size_t>(cut - order_.begin()), 1);
  }
  // top-p: the fewest most likely tokens whose mass reaches top_p (of the candidates' mass).
  // Invariant: the top `lo` hold less than the target, the top `hi` at least as much.
  if (params_.top_p < 1.0f) {
    const double target = params_.top_p * sum;
    size_t lo = 0, hi = keep;
    double mass_lo = 0;
    // First split: the tokens at least 1/1000 as likely as the most likely one (a trained model's
    // nucleus is nearly always among them). A plain partition on the weight, as it is monotone in
    // the rank: cheaper than selecting by rank over the whole vocabulary.
    const auto likely =
        std::partition(order_.begin(), at(keep), [&](int32_t id) { return w(id) >= 1e-3; });
    const auto m = static_cast<size_t>(likely - order_.begin());
    double mass_m = 0;
    for (size_t r = 0; r < m; ++r) mass_m += w(order_[r]);
    if (mass_m >= target) {
      hi = m;
    } else {
      lo = m;
      mass_lo = mass_m;
    }
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      std::nth_element(at(lo), at(mid), at(hi), by_rank);  // [lo, mid) now ranks before [mid, hi)
      double mass_mid = mass_lo;
      for (size_t r = lo; r < mid; ++r) mass_mid += w(order_[r]);
      if (mass_mid >= target) {
        hi = mid;
      } else {
        lo = mid;
        mass_lo = mass_mid;
      }
    }
    keep = hi;
  }
  // The draw walks the kept tokens in id order (Backend::sample_token walks the vocabulary so):
  // a few are sorted by id; many are marked in place (the dropped ones get weight 0).
  if (keep < n / 16) {
    std::sort(order_.begin(), at(keep));
  } else if (keep < n) {
    std::vector<double> kept(n, 0.0);
    for (size_t r = 0; r < keep; ++r) kept[static_cast<size_t>(order_[r])] = w(order_[r]);
    weight_.swap(kept);
    keep = n;
    std::iota(order_.begin(), order_.end(), 0);
  }
  double total = 0;
  for (size_t r = 0; r < keep; ++r) total += w(order_[r]);
  const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  double acc = 0;
  for (size_t rank = 0; rank < keep; ++rank) {
    acc += w(order_[rank]);
    if (r < acc) return order_[rank];
  }
  return order_[keep - 1];
}

}  // namespace fp8llm
