#include "backend/cuda/runtime/device.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <map>
#include <mutex>
#include <tuple>

#include "backend/cuda/runtime/cuda_check.h"

namespace fp8llm::cuda {

bool device_available() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" error for later checks
    return false;
  }
  return count > 0;
}

std::string device_description() {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  return fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB)", p.name, p.major, p.minor,
                     p.multiProcessorCount, static_cast<double>(p.totalGlobalMem) / (1 << 30));
}

int device_compute_capability() {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  int major = 0;
  int minor = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  return major * 10 + minor;
}

int device_multiprocessors() {
  int dev = 0;
  int count = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev));
  return count;
}

int resident_blocks_per_sm(const void* kernel, int threads, size_t shared_bytes) {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  using Key = std::tuple<int, const void*, int, size_t>;
  static std::mutex mutex;
  static std::map<Key, int> known;
  const Key key{dev, kernel, threads, shared_bytes};
  const std::lock_guard lock(mutex);
  if (const auto it = known.find(key); it != known.end()) return it->second;
  int blocks = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, shared_bytes));
  known.emplace(key, blocks);
  return blocks;
}

}  // namespace fp8llm::cuda
