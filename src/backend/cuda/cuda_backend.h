// The CUDA backend (Hopper / Ada: FP8 tensor cores): loads a LoadPlan straight into GPU memory,
// quantizing on the device, and implements the Backend ops with bf16 activations and fp32
// accumulation.
#pragma once

#include <cstdint>
#include <memory>

#include "fp8llm/engine.h"
#include "loader/load_plan.h"
#include "loader/weight_stream.h"
#include "model/backend.h"

namespace fp8llm {

struct CudaLoad {
  std::unique_ptr<Backend> backend;
  uint64_t resident_bytes = 0;     // weight bytes on the device
  uint64_t peak_device_bytes = 0;  // device memory in use at the load's high-water mark
};

// Checks the GPU (FP8 tensor cores: compute capability >= 8.9 for fp8 modes; enough free memory
// for the plan) before reading any weight, then streams the checkpoint onto it.
CudaLoad load_cuda_backend(const LoadPlan& plan, const LoadOptions& options, StreamStats* stats);

}  // namespace fp8llm
