// Streams a LoadPlan's tensors from disk into GPU memory, in file order: tensors kept as they are
// go straight to their final device address; the others are staged on the device and the target
// consumes them there (quantizes them into their final allocation) while the next copies are in
// flight. The BF16 model never exists in device memory: only the staging buffers do.
//
// Two ways of getting the bytes to the device:
//   registered_stream.h  the page cache itself is page-locked in place and copied from (no host
//                        memcpy); used where the system allows it;
//   pread_stream.h       reader threads pread into a ring of pinned buffers (one host memcpy);
//                        the fallback.
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
  // there), or nullptr to have it staged and passed to consume_on_device. Called once per tensor,
  // in file order, on the calling thread, before any weight byte is read.
  virtual void* direct_destination(const PlannedTensor& tensor) = 0;
  // Enqueues on `stream` whatever turns the staged source bytes (on the device, valid until the
  // stream reaches the work enqueued here) into the tensor's final form. Called on the calling
  // thread, in file order; `stream` is the same for every call.
  virtual void consume_on_device(const PlannedTensor& tensor, const void* device_source,
                                 cudaStream_t stream) = 0;
  // Called once every tensor's work has completed (e.g. to check a NaN flag).
  virtual void finish() {}
};

struct DeviceStreamOptions {
  size_t ring_buffers = 6;  // pinned host buffers (and device staging buffers)
  // Size of each buffer. A staged tensor is consumed whole (quantization needs whole rows and
  // tiles), so every buffer grows to the largest staged tensor; direct tensors larger than a
  // buffer are copied in chunks.
  size_t buffer_bytes = 128ull << 20;
  // The pread ring's readers: one thread's pread from the page cache runs at a few GB/s, so a
  // buffer is filled by several threads at once, each reading pieces of this size. (H100 host, 16
  // cores, Llama-3-8B shapes: 16 threads x 8 MiB pieces over 6 x 128 MiB buffers streamed 19.5-22
  // GB/s; 8 threads x 16 MiB over 4 x 256 MiB, 16-17.5 GB/s; docs/PERFORMANCE.md.)
  size_t reader_threads = 16;
  size_t piece_bytes = 8ull << 20;
  // Copy straight out of the page cache (registered_stream.h) where the system allows it; the
  // pread ring otherwise, or when false.
  bool register_files = true;
  // Where the page cache is registered: the share of its chunks that reader_threads pread into
  // read_slots page-locked slots instead (chunk_read_ring.h), beside the registering of the
  // others. 0: every chunk registered in place; 1: every chunk read.
  double pread_share = 0.4;
  size_t read_slots = 4;
};

struct DeviceStreamStats {
  StreamStats stream;
  uint64_t staging_device_bytes = 0;  // device memory the ring used
  uint64_t pread_bytes = 0;  // tensor bytes copied out of the read ring's slots (registered path)
};

DeviceStreamStats stream_to_device(const LoadPlan& plan, DeviceStreamTarget& target,
                                   const DeviceStreamOptions& options = {},
                                   const StreamProgress& progress = {});

}  // namespace fp8llm::cuda
