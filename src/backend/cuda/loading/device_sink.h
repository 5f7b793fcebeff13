// The target of the device stream: puts each planned tensor into its DeviceWeights slot. BF16
// tensors kept as they are are copied straight to their slot; quantized projections are quantized
// on the device from the staged BF16 bytes into their FP8 codes and scales (a NaN or infinity is an
// Error naming the tensor); F16/F32 tensors are converted to bf16 (and then quantized, if planned).
// A pre-quantized checkpoint's e4m3 codes are copied as they are and its scales converted to the
// device layout. finish() applies loader/value_checks.h's rule once every tensor is in place: a
// non-finite value in a tensor held as it is, or a scale that is not finite and positive, is an
// Error naming the tensor (one flag per tensor, all copied back at once).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cuda/loading/device_stream.h"
#include "backend/cuda/loading/device_weights.h"
#include "backend/cuda/loading/weight_quantizer.h"
#include "backend/cuda/runtime/device_buffer.h"

namespace fp8llm::cuda {

class DeviceSink final : public DeviceStreamTarget {
 public:
  explicit DeviceSink(DeviceWeights& weights) : weights_(weights) {}

  void* direct_destination(const PlannedTensor& tensor) override;
  void consume_on_device(const PlannedTensor& tensor, const void* device_source,
                         cudaStream_t stream) override;
  void finish() override;

  uint64_t tensors_done() const { return tensors_done_; }
  // Device memory in use (all processes) at the end of the stream, staging still allocated.
  uint64_t device_used_at_finish() const { return device_used_at_finish_; }

 private:
  const DeviceTensorSlot& slot_of(const PlannedTensor& tensor) const;

  DeviceWeights& weights_;
  DeviceWeightQuantizer quantizer_;
  DeviceBuffer convert_;                      // bf16 copy of an F16/F32 weight that is quantized
  std::vector<const PlannedTensor*> scales_;  // pre-quantized scale tensors, checked in finish()
  // Tensors held as they are (bf16, or a pre-quantized projection's e4m3 codes), checked for
  // non-finite values in finish().
  std::vector<const PlannedTensor*> kept_;
  uint64_t tensors_done_ = 0;
  uint64_t device_used_at_finish_ = 0;
};

}  // namespace fp8llm::cuda
