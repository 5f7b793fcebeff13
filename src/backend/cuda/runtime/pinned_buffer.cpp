#include "backend/cuda/runtime/pinned_buffer.h"

#include <utility>

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

PinnedBuffer::PinnedBuffer(size_t bytes) {
  if (bytes == 0) return;
  CUDA_CHECK(cudaMallocHost(&ptr_, bytes));
  bytes_ = bytes;
}

PinnedBuffer::~PinnedBuffer() {
  release();
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  if (this != &other) {
    release();
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void PinnedBuffer::release() noexcept {
  if (ptr_ == nullptr) return;
  const cudaError_t err = cudaFreeHost(ptr_);
  if (err != cudaSuccess) log_warning("cudaFreeHost failed: {}", cudaGetErrorString(err));
  ptr_ = nullptr;
  bytes_ = 0;
}

}  // namespace fp8llm::cuda
