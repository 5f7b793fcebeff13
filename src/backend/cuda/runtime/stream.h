// An owned CUDA stream (non-blocking with respect to the legacy default stream). Move-only.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/runtime/unique_handle.h"

namespace fp8llm::cuda {

class Stream {
 public:
  Stream();

  cudaStream_t get() const { return stream_.get(); }
  operator cudaStream_t() const { return get(); }  // NOLINT: a Stream is used where a handle is
  void synchronize() const;

 private:
  struct Destroy {
    void operator()(cudaStream_t stream) const noexcept;
  };
  UniqueHandle<cudaStream_t, Destroy> stream_;
};

}  // namespace fp8llm::cuda
