// A sink that assembles HostWeights: quantizable projections are quantized on the CPU as they
// stream in (when the plan says so); everything else is read straight into its final buffer.
// Pre-quantized projections (FP8 weight + scale in the checkpoint) are copied as they are; their
// scales are converted to F32 (and a per-tensor scale repeated per row) where the file differs.
// Each tensor's place in HostWeights is host_slot / host_linear (model/host_weights.h).
#pragma once

#include "loader/weight_stream.h"
#include "model/host_weights.h"

namespace fp8llm {

class HostSink : public WeightSink {
 public:
  explicit HostSink(const LoadPlan& plan);
  void consume(const PlannedTensor& tensor, const TensorView& source) override;
  std::byte* direct_destination(const PlannedTensor& tensor) override;

  // The assembled weights (call once streaming has finished).
  HostWeights take() { return std::move(weights_); }

 private:
  HostWeights weights_;
};

// Writes a checkpoint's scale tensor `source` (F32, BF16 or F16; the full shape, or one
// per-tensor value) into the F32 `scale`.
void convert_weight_scale(const TensorView& source, HostTensor& scale);

// Plans, streams and assembles in one call; logs nothing.
HostWeights load_host_weights(const LoadPlan& plan, const StreamProgress& progress = {},
                              StreamStats* stats = nullptr);

}  // namespace fp8llm
