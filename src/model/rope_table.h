// Rotary position embedding (RoPE) frequencies, computed as Hugging Face transformers computes
// them, for every backend.
//
// The frequencies follow transformers' float32 arithmetic step by step (default and "llama3"
// scaling), so that an fp32 forward pass matches a transformers fp32 forward to the last bits that
// float32 rounding leaves.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace fp8llm {
struct RopeConfig;

// The RoPE settings of a config.json, as plain values (the config parser fills them in).
struct RopeParams {
  enum class Type { Default, Llama3 };
  Type type = Type::Default;
  double theta = 10000.0;  // rope_theta
  // Llama-3 scaling only (rope_type "llama3"):
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// The settings of a parsed config.json (formats/hf_config.h), for every backend's RopeTable.
RopeParams rope_params(const RopeConfig& config);

// The inverse frequencies of one head size, and the cos/sin of any position from them.
class RopeTable {
 public:
  // Throws Error for settings transformers cannot use either (odd head_dim, theta <= 0, llama3
  // factors that are not positive or a high_freq_factor not above low_freq_factor).
  RopeTable(const RopeParams& params, int64_t head_dim);

  int64_t head_dim() const { return head_dim_; }
  // inv_freq[i] for i < head_dim/2, bit for bit as transformers' `inv_freq` buffer (up to the last
  // bit of float32 pow, which transformers takes from the CPU vector library).
  std::span<const float> inv_freq() const { return inv_freq_; }

  // cos and sin of the angles position * inv_freq[i] for i < head_dim/2. Both halves of a head use
  // the same angles (transformers' emb = cat(freqs, freqs)), so only one half is written.
  void cos_sin(int64_t position, float* cos_half, float* sin_half) const;

 private:
  int64_t head_dim_;
  std::vector<float> inv_freq_;
};

}  // namespace fp8llm
