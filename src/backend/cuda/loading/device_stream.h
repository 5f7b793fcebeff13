// Streams a LoadPlan's tensors from disk into GPU memory, in file order: tensors kept as they are
// go straight to their final device address; the others are staged on the device and the target
// consumes them there (quantizes them into their final allocation) while the next copies are in
// flight. The BF16 model never exists in device memory: only the staging buffers do.
//
// The files go in page-aligned chunks (chunk_stream.h), each reaching the device one of two ways:
// page-locked in place, the device copying straight out of the page cache (no host memcpy), where
// the system allows registering file-backed memory; or pread by reader threads into a few
// page-locked slots (chunk_read_ring.h). Registering runs at one rate however many threads ask,
// so part of the chunks go the second way meanwhile; where registering files does not work,
// all of them do.
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
  size_t staging_buffers = 6;  // device staging buffers, each the size of the largest staged tensor
  // The chunk size: what is registered or read into a slot at once. A staged tensor is consumed
  // whole (quantization needs whole rows and tiles), so it may span chunks.
  size_t chunk_bytes = 128ull << 20;
  // The readers of the page-locked slots: one thread's pread from the page cache runs at a few
  // GB/s, so a chunk is read by several threads at once, each reading pieces of this size.
  size_t reader_threads = 16;
  size_t piece_bytes = 8ull << 20;
  size_t read_slots = 4;
  // Copy straight out of the page cache where the system allows it; when false, every chunk is
  // read into the slots.
  bool register_files = true;
  // Where the page cache is registered, the share of the chunks read into the slots instead.
  // 0: every chunk registered in place. (Two H100 hosts, 16 cores, Llama-3-8B shapes, streaming
  // alone: 0.45-0.63 s registering everything, 0.44-0.51 s with half read, 0.40-0.46 s reading
  // everything; docs/PERFORMANCE.md.)
  double pread_share = 0.5;
};

struct DeviceStreamStats {
  StreamStats stream;
  uint64_t staging_device_bytes = 0;  // device memory the staging buffers used
  uint64_t pread_bytes = 0;           // tensor bytes copied out of the read slots
};

DeviceStreamStats stream_to_device(const LoadPlan& plan, DeviceStreamTarget& target,
                                   const DeviceStreamOptions& options = {},
                                   const StreamProgress& progress = {});

}  // namespace fp8llm::cuda
