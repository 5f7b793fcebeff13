#include "backend/cuda/loading/device_stream.h"

#include "backend/cuda/loading/pread_stream.h"
#include "backend/cuda/loading/registered_stream.h"

namespace fp8llm::cuda {

DeviceStreamStats stream_to_device(const LoadPlan& plan, DeviceStreamTarget& target,
                                   const DeviceStreamOptions& options,
                                   const StreamProgress& progress) {
  if (options.register_files && registered_streaming_available(plan))
    return stream_registered(plan, target, options, progress);
  return stream_pread(plan, target, options, progress);
}

}  // namespace fp8llm::cuda
