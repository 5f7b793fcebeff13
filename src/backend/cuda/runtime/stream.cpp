#include "backend/cuda/runtime/stream.h"

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

Stream::Stream() {
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_ = UniqueHandle<cudaStream_t, Destroy>(stream);
}

void Stream::Destroy::operator()(cudaStream_t stream) const noexcept {
  const cudaError_t err = cudaStreamDestroy(stream);
  if (err != cudaSuccess) log_warning("cudaStreamDestroy failed: {}", cudaGetErrorString(err));
}

void Stream::synchronize() const {
  CUDA_CHECK(cudaStreamSynchronize(get()));
}

}  // namespace fp8llm::cuda
