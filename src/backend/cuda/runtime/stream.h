// An owned CUDA stream (non-blocking with respect to the legacy default stream). Move-only.
#pragma once

#include <cuda_runtime.h>

namespace fp8llm::cuda {

class Stream {
 public:
  Stream();
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }
  operator cudaStream_t() const { return stream_; }  // NOLINT: a Stream is used where a handle is
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace fp8llm::cuda
