#include "backend/cuda/runtime/device_buffer.h"

#include <stdexcept>
#include <utility>

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes) {
  if (bytes == 0) return;
  CUDA_CHECK(cudaMalloc(&ptr_, bytes));
  bytes_ = bytes;
}

DeviceBuffer::~DeviceBuffer() {
  release();
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    release();
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::release() noexcept {
  if (ptr_ == nullptr) return;
  // A destructor cannot throw; a failing cudaFree means the context is already broken, and the
  // next checked call reports that.
  const cudaError_t err = cudaFree(ptr_);
  if (err != cudaSuccess) log_warning("cudaFree failed: {}", cudaGetErrorString(err));
  ptr_ = nullptr;
  bytes_ = 0;
}

void DeviceBuffer::reserve_discard(size_t bytes) {
  if (bytes <= bytes_) return;
  release();
  *this = DeviceBuffer(bytes);
}

void DeviceBuffer::upload(const void* host, size_t bytes) {
  if (bytes > bytes_) throw std::out_of_range("DeviceBuffer::upload past the end of the buffer");
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpy(ptr_, host, bytes, cudaMemcpyHostToDevice));
}

void DeviceBuffer::download(void* host, size_t bytes) const {
  if (bytes > bytes_) throw std::out_of_range("DeviceBuffer::download past the end of the buffer");
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpy(host, ptr_, bytes, cudaMemcpyDeviceToHost));
}

void DeviceBuffer::fill_zero() {
  if (bytes_ == 0) return;
  CUDA_CHECK(cudaMemset(ptr_, 0, bytes_));
}

}  // namespace fp8llm::cuda
