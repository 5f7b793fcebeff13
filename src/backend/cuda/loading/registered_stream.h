// The zero-copy way of streaming a LoadPlan to the device: each checkpoint file is memory-mapped,
// page-aligned chunks of the mapping are page-locked in place (cudaHostRegister, read-only) one
// ahead of the copies, and the device copies straight out of the page cache, with no host
// memcpy. Registering runs at one rate however many threads ask (29-41 GB/s on H100 hosts,
// against 55 for the copies), so a share of the chunks is read by other threads into a few
// page-locked slots meanwhile and copied from there. Used by stream_to_device (device_stream.h)
// where the system allows registering file-backed memory; the pread ring is the fallback.
#pragma once

#include "backend/cuda/loading/device_stream.h"

namespace fp8llm::cuda {

// Whether page-locking a mapping of `plan`'s first file works here (tried on one page).
bool registered_streaming_available(const LoadPlan& plan);

// As stream_to_device. options.buffer_bytes is the chunk size, options.ring_buffers the number of
// device staging buffers (each the size of the largest staged tensor). options.pread_share of
// the chunks are pread by options.reader_threads threads into options.read_slots page-locked
// slots (chunk_read_ring.h); this thread registers the others, at most four locked at a time.
// Every driver call is made on the calling thread: registering on others held the copies up
// (registered_stream.cpp says why).
DeviceStreamStats stream_registered(const LoadPlan& plan, DeviceStreamTarget& target,
                                    const DeviceStreamOptions& options,
                                    const StreamProgress& progress);

}  // namespace fp8llm::cuda
