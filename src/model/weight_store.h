// The live weights of a loaded model by checkpoint tensor: how each tensor of
// expected_weights(config) is held and its bytes, for the state dict (src/engine/state_dict.h);
// where it lives, for views without a copy; writing new values in place, for live updates
// (src/engine/weight_update.h); and moving out of device memory and back, for sleep level 2.
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

// Where one checkpoint tensor's memory is: its values (the codes of an FP8 projection) and, for an
// FP8 projection, its scales in the checkpoint layout with rows `scale_row_stride` floats apart.
struct HeldMemory {
  std::byte* values = nullptr;
  float* scales = nullptr;
  int64_t scale_row_stride = 0;
  bool on_device = false;
};

// New values for one checkpoint tensor: numel(spec.shape) elements of `dtype` (BF16, F16 or F32),
// row-major, in host memory or in the memory of the store's device.
struct WeightWrite {
  const WeightSpec* spec = nullptr;
  DType dtype = DType::BF16;
  const std::byte* data = nullptr;
  bool on_device = false;
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
  virtual HeldMemory memory(const WeightSpec& spec) = 0;

  // Whether writes may come from device memory (a GPU store); host memory always may.
  virtual bool reads_device_memory() const { return false; }
  // An Error naming the first of `writes` whose source, in device memory, holds a NaN or an
  // infinity (sources in host memory are the caller's to check).
  virtual void check_device_sources(std::span<const WeightWrite> writes) const;
  // Writes each tensor into the memory that holds it, which does not move: an FP8 projection
  // quantized as a load quantizes it, anything else converted to its held dtype. The writes were
  // checked (names, shapes, dtypes, finite values); done when this returns.
  virtual void write(std::span<const WeightWrite> writes) = 0;

  // Sleep level 2: moves the weights out of device memory into host memory, and back to new
  // device memory (the addresses change). A store in host memory does nothing.
  virtual void offload() {}
  virtual void restore() {}
};

}  // namespace fp8llm
