// Programmatic dependent launch (Hopper and later), the device side. A kernel launched with
// launch_dependent() (runtime/dependent_launch.h) may start before the kernel ahead of it on the
// stream has finished: once every block of that kernel has called allow_dependent_grids() (or
// exited). Until it calls wait_for_prior_grids() it must not read what earlier kernels write, nor
// write what they read; after it, all of their work is done and visible. The weight-streaming
// kernels use the gap to start reading their weights while the small kernel before them runs.
// On older GPUs, and for kernels launched the ordinary way, both calls do nothing.
#pragma once

namespace fp8llm::cuda {

__device__ __forceinline__ void wait_for_prior_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_dependent_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

}  // namespace fp8llm::cuda
