#include "backend/cuda/runtime/event.h"

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

Event::Event() {
  cudaEvent_t event = nullptr;
  CUDA_CHECK(cudaEventCreate(&event));
  event_ = UniqueHandle<cudaEvent_t, Destroy>(event);
}

void Event::Destroy::operator()(cudaEvent_t event) const noexcept {
  const cudaError_t err = cudaEventDestroy(event);
  if (err != cudaSuccess) log_warning("cudaEventDestroy failed: {}", cudaGetErrorString(err));
}

void Event::record(cudaStream_t stream) {
  CUDA_CHECK(cudaEventRecord(get(), stream));
}

void Event::synchronize() const {
  CUDA_CHECK(cudaEventSynchronize(get()));
}

float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), get()));
  return ms;
}

}  // namespace fp8llm::cuda
