#include "backend/cuda/loading/device_stream.h"

#include "backend/cuda/loading/chunk_stream.h"

namespace fp8llm::cuda {

DeviceStreamStats stream_to_device(const LoadPlan& plan, DeviceStreamTarget& target,
                                   const DeviceStreamOptions& options,
                                   const StreamProgress& progress) {
  DeviceStreamOptions chunked = options;
  if (!options.register_files || !registered_streaming_available(plan)) chunked.pread_share = 1;
  return stream_chunks(plan, target, chunked, progress);
}

}  // namespace fp8llm::cuda
