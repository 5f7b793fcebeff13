// Programmatic dependent launch, the host side (the device side: kernels/dependent_launch.cuh).
// launch_dependent() launches a kernel that may begin while the one before it on the stream still
// runs; the kernel must call wait_for_prior_grids() before it touches anything earlier kernels
// write. It works inside CUDA graph capture; before Hopper it is an ordinary launch. A decode
// step's first kernel (the embedding) is launched the ordinary way, so nothing a step reads, the
// weights included, is still being written when its dependents start.
//
// FP8LLM_DEPENDENT_LAUNCH sets which launches overlap, to measure what each buys: 0 none, 1 the
// weight-streaming kernels (Overlap::kWeights), 2 (the default) the small kernels between them too.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {

enum class Overlap {
  kWeights = 1,  // kernels that stream weights: they request them before waiting
  kAll = 2,      // the small kernels between them: only their launch latency is hidden
};

// Whether launch_dependent() overlaps kernels of kind `kind` on the current device (decided once
// per process).
bool dependent_launch_enabled(Overlap kind);

template <typename... Params, typename... Args>
void launch_dependent(Overlap kind, void (*kernel)(Params...), dim3 grid, dim3 block,
                      size_t shared_bytes, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = dependent_launch_enabled(kind) ? 1 : 0;
  CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...));
}

}  // namespace fp8llm::cuda
