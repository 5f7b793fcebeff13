// The ops a Llama-family forward pass needs, implemented once per device (CPU: exact reference;
// CUDA: fast). The model (llama_model.h) is written only against this interface; a backend owns
// the weights (loaded through a sink) and the KV cache of the sequence being run.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "core/dtype.h"
#include "core/error.h"
#include "model/top_token.h"
#include "model/weights.h"
#include "quant/fp8_scheme.h"

namespace fp8llm {

// What shapes the distribution a token is drawn from: the sampling parameters that act on the
// logits alone (the repetition penalty also needs the history; the seed stays with the sampler).
struct SampleShape {
  float temperature = 1.0f;  // > 0
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  bool filtered() const { return top_k > 0 || top_p < 1.0f || min_p > 0.0f; }
};

// How a backend holds one checkpoint tensor (a WeightSpec of expected_weights): its element type
// (F8_E4M3 for an FP8 projection) and, for an FP8 projection, the scheme of its F32 scales.
struct HeldWeight {
  DType dtype = DType::BF16;
  std::optional<Fp8Scheme> scheme;
};

// Which weight of a layer an op uses. The backend maps it to its own storage.
enum class LinearKind { Q, K, V, O, Gate, Up, Down, LmHead };
enum class NormKind { Input, PostAttention, QNorm, KNorm, Final };

// A 2-D activation [rows, cols] in the backend's activation format (fp32 on both backends). Handles
// are valid until the next begin_forward().
struct Act {
  void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Starts a forward pass over `tokens` new tokens at positions past.. past + tokens - 1; frees the
  // previous pass's activations.
  virtual void begin_forward(int64_t tokens, int64_t past) = 0;
  virtual Act alloc(int64_t rows, int64_t cols) = 0;
  // A view of rows [begin, begin + count) of `a`.
  virtual Act rows(Act a, int64_t begin, int64_t count) = 0;

  virtual void embed(std::span<const int32_t> ids, Act out) = 0;
  // RMSNorm of each row of `in` (or of each head_dim slice when `in.cols` is a multiple of the
  // norm's size, for per-head q/k norms); out may be in.
  virtual void rms_norm(Act in, int64_t layer, NormKind norm, Act out) = 0;
  // out = in · W^T (+ bias); the weight is FP8 (activations quantized on the fly) or BF16.
  virtual void linear(Act in, int64_t layer, LinearKind kind, Act out) = 0;
  // Rotary embedding in place on x [tokens, heads * head_dim] at absolute `positions`.
  virtual void rope(Act x, int64_t heads, std::span<const int64_t> positions) = 0;
  // Appends k, v of these tokens to the layer's cache at `past`.. and attends causally:
  // out [tokens, heads * head_dim].
  virtual void attention(int64_t layer, Act q, Act k, Act v, int64_t past, Act out) = 0;
  // out = silu(gate) * up
  virtual void silu_mul(Act gate, Act up, Act out) = 0;
  // x += y
  virtual void add(Act x, Act y) = 0;
  // Copies rows of an activation into fp32 host memory.
  virtual void read(Act in, float* host_out) = 0;
  // The most likely token of a one-row activation (logits) and its log-probability, computed where
  // the logits are: greedy decoding then copies two numbers instead of the whole row.
  virtual TopToken top_token(Act logits) = 0;
  // Whether sample_token works here (the CUDA backend); elsewhere the host samples.
  virtual bool samples_on_device() const { return false; }
  // A token drawn from a one-row activation of logits where they are, as the host's Sampler
  // draws it (src/engine/sampler.cpp) given `uniform` in [0, 1): softmax(logits / temperature)
  // over the tokens top-k, min-p and top-p keep, walked in index order up to uniform times their
  // total; with the log-softmax of the raw logits there.
  // Only called where samples_on_device() says so.
  virtual TopToken sample_token(Act logits, const SampleShape& shape, double uniform) {
    (void)logits;
    (void)shape;
    (void)uniform;
    fail("sample_token: this backend samples on the host");
  }

  // Drops the KV cache contents (a new sequence starts at position 0).
  virtual void reset_cache() = 0;
  // Positions the cache can hold.
  virtual int64_t cache_capacity() const = 0;

  // The live weights, for the state dict (src/engine/state_dict.h). `spec` is one of
  // expected_weights(config) for the loaded model.
  virtual HeldWeight held_weight(const WeightSpec& spec) const = 0;
  // Copies the tensor's values (the e4m3 codes of an FP8 projection; numel(spec.shape) elements of
  // held_weight's dtype) into `values` and, for an FP8 projection, its scales in the checkpoint
  // layout (weight_scale_shape: [N, 1] or [ceil(N/128), ceil(K/128)], row-major) into `scales`.
  // Either span may be empty to skip that part; a non-empty one must have exactly that size.
  virtual void read_weight(const WeightSpec& spec, std::span<std::byte> values,
                           std::span<float> scales) const = 0;
};

}  // namespace fp8llm
