// The portable way of streaming a LoadPlan to the device: reader threads pread tensors (in file
// order) into a ring of pinned host buffers, each buffer is copied to the device asynchronously,
// and the target consumes it there while the next reads and copies are in flight. Works wherever
// pread and pinned memory do; costs one host memcpy per byte (out of the page cache).
#pragma once

#include "backend/cuda/loading/device_stream.h"

namespace fp8llm::cuda {

// As stream_to_device. options.ring_buffers pinned buffers of max(options.buffer_bytes, the
// largest staged tensor) each (and as many device staging buffers, where a tensor is staged) are
// filled by options.reader_threads threads, each reading options.piece_bytes at a time.
DeviceStreamStats stream_pread(const LoadPlan& plan, DeviceStreamTarget& target,
                               const DeviceStreamOptions& options, const StreamProgress& progress);

}  // namespace fp8llm::cuda
