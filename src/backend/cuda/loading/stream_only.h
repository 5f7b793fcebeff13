// Streaming alone, for measuring the loader: tensors kept as they are land in one device arena,
// staged ones are dropped, so what is timed is reading, the copy path and the host -> device
// copies, without quantization or the backend.
#pragma once

#include <cstdint>

#include "backend/cuda/loading/device_stream.h"

namespace fp8llm::cuda {

struct StreamOnlyResult {
  DeviceStreamStats stats;
  uint64_t direct_bytes = 0;  // bytes copied to their final place (not staged)
};

StreamOnlyResult stream_only(const LoadPlan& plan, const DeviceStreamOptions& options = {});

}  // namespace fp8llm::cuda
