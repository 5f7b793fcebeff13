// Streams a LoadPlan to the device chunk by chunk: each checkpoint file is memory-mapped and cut
// into page-aligned chunks, and each chunk is either page-locked in place (cudaHostRegister,
// read-only, one ahead of the copies) so that the device copies straight out of the page cache,
// or read by other threads into a page-locked slot of a ChunkReadRing and copied from there.
// stream_to_device (device_stream.h) picks the share of each.
#pragma once

#include "backend/cuda/loading/device_stream.h"

namespace fp8llm::cuda {

// Whether page-locking a mapping of `plan`'s first file works here (tried on one page).
bool registered_streaming_available(const LoadPlan& plan);

// As stream_to_device, with options.pread_share of the chunks read into the slots (1: all of them,
// and no file is registered; the caller has checked registered_streaming_available otherwise).
// options.chunk_bytes is the chunk size; at most four registered chunks are locked at a time.
// Every driver call is made on the calling thread: registering on others held the copies up
// (chunk_stream.cpp says why).
DeviceStreamStats stream_chunks(const LoadPlan& plan, DeviceStreamTarget& target,
                                const DeviceStreamOptions& options, const StreamProgress& progress);

}  // namespace fp8llm::cuda
