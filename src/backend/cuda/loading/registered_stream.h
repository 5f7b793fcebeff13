// The zero-copy way of streaming a LoadPlan to the device: each checkpoint file is memory-mapped,
// page-aligned chunks of the mapping are page-locked in place (cudaHostRegister, read-only) one
// ahead of the copies, and the device copies straight out of the page cache: no pread into a
// pinned ring, no host memcpy. Used by stream_to_device (device_stream.h) where the system
// allows registering file-backed memory; the pread ring is the fallback.
#pragma once

#include "backend/cuda/loading/device_stream.h"

namespace fp8llm::cuda {

// Whether page-locking a mapping of `plan`'s first file works here (tried on one page).
bool registered_streaming_available(const LoadPlan& plan);

// As stream_to_device. options.buffer_bytes is the registered chunk size, options.ring_buffers
// the number of device staging buffers (each the size of the largest staged tensor); at most four
// chunks are locked at a time, and reader_threads is not used (every driver call is made on the
// calling thread: registering on others held the copies up, registered_stream.cpp says why).
DeviceStreamStats stream_registered(const LoadPlan& plan, DeviceStreamTarget& target,
                                    const DeviceStreamOptions& options,
                                    const StreamProgress& progress);

}  // namespace fp8llm::cuda
