#include "model/rope_table.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "formats/hf_config.h"

namespace fp8llm {
namespace {

// transformers: inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)), all float32.
// torch evaluates `1.0 / t` as t.reciprocal() * 1.0, which is the same correctly rounded quotient.
// The float32 pow is taken in double and rounded once, i.e. correctly rounded; torch's vectorized
// powf is accurate to 1 ulp, so a rare entry may differ from it in the last bit.
std::vector<float> default_inv_freq(double theta, int64_t dim) {
  const float base = static_cast<float>(theta);
  std::vector<float> inv_freq(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    const float power = static_cast<float>(std::pow(double{base}, double{exponent}));
    inv_freq[static_cast<size_t>(i)] = 1.0f / power;
  }
  return inv_freq;
}

// transformers `_compute_llama3_parameters`, one float32 operation at a time. Python scalars meet
// float32 tensors as float32 values, and torch turns `scalar / tensor` into
// tensor.reciprocal() * scalar (Tensor.__rtruediv__), which is what the reciprocals below copy.
// The buffer is built on the CPU, where `tensor / scalar` is a true division.
void apply_llama3_scaling(const RopeParams& p, std::vector<float>& inv_freq) {
  const double old_context_len = static_cast<double>(p.original_max_position_embeddings);
  const float low_freq_wavelen = static_cast<float>(old_context_len / p.low_freq_factor);
  const float high_freq_wavelen = static_cast<float>(old_context_len / p.high_freq_factor);
  const float factor = static_cast<float>(p.factor);
  const float low_freq_factor = static_cast<float>(p.low_freq_factor);
  const float factor_span = static_cast<float>(p.high_freq_factor - p.low_freq_factor);
  const float two_pi = static_cast<float>(2 * std::numbers::pi);
  const float old_len = static_cast<float>(old_context_len);

  for (float& f : inv_freq) {
    const float wavelen = (1.0f / f) * two_pi;
    // Wavelengths longer than the original context are slowed down by `factor`...
    const float inv_freq_llama = wavelen > low_freq_wavelen ? f / factor : f;
    // ...short ones are kept, and the band between blends the two smoothly.
    const float smooth = ((1.0f / wavelen) * old_len - low_freq_factor) / factor_span;
    const float slowed = (1.0f - smooth) * inv_freq_llama / factor;
    const float kept = smooth * inv_freq_llama;
    const float smoothed = slowed + kept;
    const bool is_medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    f = is_medium ? smoothed : inv_freq_llama;
  }
}

}  // namespace

RopeParams rope_params(const RopeConfig& config) {
  RopeParams p;
  p.type = config.type == RopeType::Llama3 ? RopeParams::Type::Llama3 : RopeParams::Type::Default;
  p.theta = config.theta;
  p.factor = config.factor;
  p.low_freq_factor = config.low_freq_factor;
  p.high_freq_factor = config.high_freq_factor;
  p.original_max_position_embeddings = config.original_max_position_embeddings;
  return p;
}

RopeTable::RopeTable(const RopeParams& params, int64_t head_dim) : head_dim_(head_dim) {
  FP8LLM_CHECK(head_dim > 0 && head_dim % 2 == 0,
               "rope: head_dim {} must be a positive even number", head_dim);
  FP8LLM_CHECK(params.theta > 0 && std::isfinite(params.theta),
               "rope: rope_theta {} must be a positive number", params.theta);
  inv_freq_ = default_inv_freq(params.theta, head_dim);
  if (params.type == RopeParams::Type::Llama3) {
    FP8LLM_CHECK(params.factor > 0, "rope: llama3 factor {} must be positive", params.factor);
    FP8LLM_CHECK(params.low_freq_factor > 0, "rope: llama3 low_freq_factor {} must be positive",
                 params.low_freq_factor);
    FP8LLM_CHECK(params.high_freq_factor > params.low_freq_factor,
                 "rope: llama3 high_freq_factor {} must be greater than low_freq_factor {}",
                 params.high_freq_factor, params.low_freq_factor);
    FP8LLM_CHECK(params.original_max_position_embeddings > 0,
                 "rope: llama3 original_max_position_embeddings {} must be positive",
                 params.original_max_position_embeddings);
    apply_llama3_scaling(params, inv_freq_);
  }
}

// transformers: freqs = inv_freq @ position_ids (a float32 product, K = 1), emb = cat(freqs,
// freqs), cos = emb.cos(). The cosine of the float32 angle is taken in double and rounded once.
void RopeTable::cos_sin(int64_t position, float* cos_half, float* sin_half) const {
  const float pos = static_cast<float>(position);
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    const double angle = double{inv_freq_[i] * pos};
    cos_half[i] = static_cast<float>(std::cos(angle));
    sin_half[i] = static_cast<float>(std::sin(angle));
  }
}

}  // namespace fp8llm
