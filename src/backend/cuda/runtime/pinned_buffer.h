// Page-locked host memory (cudaMallocHost): the source or target of asynchronous copies, so that a
// copy can overlap with kernels and with reading the next tensor from disk. Move-only.
#pragma once

#include <cstddef>

#include "backend/cuda/runtime/unique_handle.h"

namespace fp8llm::cuda {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);

  void* data() const { return memory_.get().ptr; }
  size_t size() const { return memory_.get().bytes; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data());
  }

 private:
  struct Free {
    void operator()(MemoryBlock block) const noexcept;
  };
  UniqueHandle<MemoryBlock, Free> memory_;
};

}  // namespace fp8llm::cuda
