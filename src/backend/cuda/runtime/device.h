// Whether a usable CUDA device is present, and what it is.
#pragma once

#include <cstddef>
#include <string>

namespace fp8llm::cuda {

// True when the CUDA runtime finds at least one device (false on a machine without a GPU or
// driver, instead of an error), so that callers and tests can fall back or skip cleanly.
bool device_available();

// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)" for the current device.
std::string device_description();

// Compute capability of the current device as major * 10 + minor (90 for Hopper).
int device_compute_capability();

// Streaming multiprocessors of the current device (132 on an H100 or H200 SXM), for grid choices.
int device_multiprocessors();

// Blocks of `kernel` (a __global__ function's address) an SM of the current device holds at once
// with `threads` threads and `shared_bytes` of dynamic shared memory, as the occupancy calculator
// gives it (registers, shared memory, warps); remembered per device and arguments, since launch
// choices ask on every eager launch.
int resident_blocks_per_sm(const void* kernel, int threads, size_t shared_bytes);

}  // namespace fp8llm::cuda
