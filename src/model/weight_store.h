// The live weights of a loaded model by checkpoint tensor, for the state dict
// (src/engine/state_dict.h): how each tensor of expected_weights(config) is held, and its bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include "core/dtype.h"
#include "model/weights.h"
#include "quant/fp8_scheme.h"

namespace fp8llm {

// How one checkpoint tensor is held: its element type (F8_E4M3 for an FP8 projection) and, for an
// FP8 projection, the scheme of its F32 scales.
struct HeldWeight {
  DType dtype = DType::BF16;
  std::optional<Fp8Scheme> scheme;
};

class WeightStore {
 public:
  virtual ~WeightStore() = default;
  // `spec` is one of expected_weights(config) for the loaded model.
  virtual HeldWeight held_weight(const WeightSpec& spec) const = 0;
  // Copies the tensor's values (the e4m3 codes of an FP8 projection; numel(spec.shape) elements
  // of held_weight's dtype) into `values` and, for an FP8 projection, its scales in the checkpoint
  // layout (weight_scale_shape: [N, 1] or [ceil(N/128), ceil(K/128)], row-major) into `scales`.
  // Either span may be empty to skip that part; a non-empty one must have exactly that size.
  virtual void read_weight(const WeightSpec& spec, std::span<std::byte> values,
                           std::span<float> scales) const = 0;
};

}  // namespace fp8llm
