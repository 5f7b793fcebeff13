// Streams a LoadPlan's tensors from disk to a sink, in file order. A reader thread reads the next
// tensor while the sink consumes (quantizes) the current one, through two reusable staging
// buffers. Tensors the sink keeps as they are go straight into their final place (no staging).
// The whole BF16 model is never held in memory: at most two quantizable tensors' source bytes
// beside the loaded weights.
#pragma once

#include <cstdint>
#include <functional>

#include "core/tensor.h"
#include "loader/load_plan.h"

namespace fp8llm {

// Receives each planned tensor's source bytes once. The view is valid only during the call.
class WeightSink {
 public:
  virtual ~WeightSink() = default;
  virtual void consume(const PlannedTensor& tensor, const TensorView& source) = 0;
  // Where the source bytes of `tensor` should be read to when the sink keeps them unchanged
  // (then `consume` receives a view of that memory), or nullptr to stage them. Called from the
  // reader thread, one tensor at a time, while `consume` may run for another tensor.
  virtual std::byte* direct_destination(const PlannedTensor& /*tensor*/) { return nullptr; }
};

struct StreamStats {
  uint64_t bytes_read = 0;
  uint64_t tensors = 0;
  double seconds = 0;
};

using StreamProgress = std::function<void(uint64_t bytes_done, uint64_t bytes_total)>;

StreamStats stream_weights(const LoadPlan& plan, WeightSink& sink, const StreamProgress& progress = {});

}  // namespace fp8llm
