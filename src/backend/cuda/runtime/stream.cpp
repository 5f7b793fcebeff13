#include "backend/cuda/runtime/stream.h"

#include <utility>

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

Stream::Stream() {
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

Stream::~Stream() {
  if (stream_ == nullptr) return;
  const cudaError_t err = cudaStreamDestroy(stream_);
  if (err != cudaSuccess) log_warning("cudaStreamDestroy failed: {}", cudaGetErrorString(err));
}

Stream::Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  std::swap(stream_, other.stream_);
  return *this;
}

void Stream::synchronize() const {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace fp8llm::cuda
