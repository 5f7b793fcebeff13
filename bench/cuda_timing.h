// Timing for the CUDA benchmarks: calls timed with CUDA events after a warm-up, and the device's
// own copy bandwidth, the floor every memory-bound kernel is measured against.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <string>
#include <vector>

namespace fp8llm::cuda::bench {

struct Timing {
  double us = 0;
  bool ok = false;
  std::string error;
};

double median(std::vector<double> v);

// Runs fn(i) repeatedly on `stream`: warm-up, then `batches` event-timed batches sized to about
// 2 ms each. Returns the median time of one call (or the error that a call threw).
Timing time_calls(const std::function<void(int)>& fn, cudaStream_t stream, int batches);

// GB/s of a 1 GiB device-to-device copy, counting the bytes read and written.
double device_copy_gbps(cudaStream_t stream);

// A benchmark's main(): run(argc, argv), or "NAME: what went wrong" and 1 when it throws.
int main_of(const char* name, int (*run)(int, char**), int argc, char** argv);

}  // namespace fp8llm::cuda::bench
