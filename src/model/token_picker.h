// Picks tokens from rows of logits where the logits are (on a GPU: a few numbers copied back
// instead of whole rows). Draws follow one definition on every device (tests/sampling_reference.h):
// softmax(logits / temperature) over the tokens top-k, min-p and top-p keep, walked in index order
// up to `uniform` times their total; greedy is the first index of the largest logit. Each result
// carries the log-softmax of the raw logits at the token. Sampling that needs the history (the
// penalties) happens on the host (src/engine/sampler.h), which reads the row instead.
#pragma once

#include <cstdint>
#include <span>

#include "model/act.h"
#include "model/top_token.h"

namespace fp8llm {

// The sampling parameters that act on the logits alone.
struct SampleShape {
  float temperature = 1.0f;  // 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  bool greedy() const { return temperature == 0.0f; }
  bool filtered() const { return top_k > 0 || top_p < 1.0f || min_p > 0.0f; }
};

struct PickSpec {
  int32_t row = 0;  // the row of the logits
  SampleShape shape;
  double uniform = 0;  // in [0, 1), for a draw
};

class TokenPicker {
 public:
  virtual ~TokenPicker() = default;
  // out[i] = the token specs[i] picks from its row of `logits` [rows, vocab].
  virtual void pick(Act logits, std::span<const PickSpec> specs, std::span<TopToken> out) = 0;
};

}  // namespace fp8llm
