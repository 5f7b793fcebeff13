#include "backend/cuda/runtime/pinned_buffer.h"

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

PinnedBuffer::PinnedBuffer(size_t bytes) {
  if (bytes == 0) return;
  void* ptr = nullptr;
  CUDA_CHECK(cudaMallocHost(&ptr, bytes));
  memory_ = UniqueHandle<MemoryBlock, Free>(MemoryBlock{ptr, bytes});
}

void PinnedBuffer::Free::operator()(MemoryBlock block) const noexcept {
  const cudaError_t err = cudaFreeHost(block.ptr);
  if (err != cudaSuccess) log_warning("cudaFreeHost failed: {}", cudaGetErrorString(err));
}

}  // namespace fp8llm::cuda
