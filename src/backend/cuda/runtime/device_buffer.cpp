#include "backend/cuda/runtime/device_buffer.h"

#include <stdexcept>

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes) {
  if (bytes == 0) return;
  void* ptr = nullptr;
  CUDA_CHECK(cudaMalloc(&ptr, bytes));
  memory_ = UniqueHandle<MemoryBlock, Free>(MemoryBlock{ptr, bytes});
}

void DeviceBuffer::Free::operator()(MemoryBlock block) const noexcept {
  const cudaError_t err = cudaFree(block.ptr);
  if (err != cudaSuccess) log_warning("cudaFree failed: {}", cudaGetErrorString(err));
}

void DeviceBuffer::reserve_discard(size_t bytes) {
  if (bytes <= size()) return;
  memory_.reset();  // freed first, so the old and the new block are never held together
  *this = DeviceBuffer(bytes);
}

void DeviceBuffer::upload(const void* host, size_t bytes) {
  if (bytes > size()) throw std::out_of_range("DeviceBuffer::upload past the end of the buffer");
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpy(data(), host, bytes, cudaMemcpyHostToDevice));
}

void DeviceBuffer::download(void* host, size_t bytes) const {
  if (bytes > size()) throw std::out_of_range("DeviceBuffer::download past the end of the buffer");
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpy(host, data(), bytes, cudaMemcpyDeviceToHost));
}

void DeviceBuffer::fill_zero() {
  if (size() == 0) return;
  CUDA_CHECK(cudaMemset(data(), 0, size()));
}

}  // namespace fp8llm::cuda
