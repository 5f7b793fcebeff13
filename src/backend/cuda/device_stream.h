// Streams a LoadPlan's tensors from disk into GPU memory: reader threads pread tensors (in file
// order) into a ring of pinned host buffers, each buffer is copied to the device asynchronously,
// and the target consumes it there (quantizes it into its final allocation) while the next reads
// and copies are in flight. Tensors kept as they are go straight to their final device address.
// The BF16 model never exists in device memory: only the ring's device staging buffers do.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "loader/load_plan.h"
#include "loader/weight_stream.h"

namespace fp8llm::cuda {

class DeviceStreamTarget {
 public:
  virtual ~DeviceStreamTarget() = default;
  // The final device address of a tensor that is kept as it is (its source bytes are copied
  // there), or nullptr to have it staged and passed to consume_on_device.
  virtual void* direct_destination(const PlannedTensor& tensor) = 0;
  // Enqueues on `stream` whatever turns the staged source bytes (on the device, valid until the
  // stream reaches the work enqueued here) into the tensor's final form.
  virtual void consume_on_device(const PlannedTensor& tensor, const void* device_source,
                                 cudaStream_t stream) = 0;
  // Called once every tensor's work has completed (e.g. to check a NaN flag).
  virtual void finish() {}
};

struct DeviceStreamOptions {
  size_t ring_buffers = 4;             // pinned host buffers (and device staging buffers)
  // Size of each buffer. A staged tensor must fit in one (buffers grow to the largest staged
  // tensor); direct tensors larger than a buffer are copied in chunks.
  size_t buffer_bytes = 256ull << 20;
  size_t reader_threads = 4;
};

struct DeviceStreamStats {
  StreamStats stream;
  uint64_t staging_device_bytes = 0;  // device memory the ring used
};

DeviceStreamStats stream_to_device(const LoadPlan& plan, DeviceStreamTarget& target,
                                   const DeviceStreamOptions& options = {},
                                   const StreamProgress& progress = {});

}  // namespace fp8llm::cuda
