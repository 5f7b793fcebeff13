// A sink that assembles HostWeights: quantizable projections are quantized on the CPU as they
// stream in (when the plan says so); everything else is read straight into its final buffer.
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

// The HostWeights slot a tensor lands in (nullptr for roles that are not plain tensors).
HostTensor* host_slot(HostWeights& weights, const WeightSpec& spec);
// The linear layer a projection weight or bias belongs to.
HostLinear* host_linear(HostWeights& weights, const WeightSpec& spec);

// Plans, streams and assembles in one call; logs nothing.
HostWeights load_host_weights(const LoadPlan& plan, const StreamProgress& progress = {},
                              StreamStats* stats = nullptr);

}  // namespace fp8llm
