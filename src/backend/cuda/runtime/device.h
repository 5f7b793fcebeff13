// Whether a usable CUDA device is present, and what it is.
#pragma once

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

}  // namespace fp8llm::cuda
