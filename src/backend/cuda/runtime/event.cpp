#include "backend/cuda/runtime/event.h"

#include <utility>

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

Event::Event() {
  CUDA_CHECK(cudaEventCreate(&event_));
}

Event::~Event() {
  if (event_ == nullptr) return;
  const cudaError_t err = cudaEventDestroy(event_);
  if (err != cudaSuccess) log_warning("cudaEventDestroy failed: {}", cudaGetErrorString(err));
}

Event::Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}

Event& Event::operator=(Event&& other) noexcept {
  std::swap(event_, other.event_);
  return *this;
}

void Event::record(cudaStream_t stream) {
  CUDA_CHECK(cudaEventRecord(event_, stream));
}

void Event::synchronize() const {
  CUDA_CHECK(cudaEventSynchronize(event_));
}

float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

}  // namespace fp8llm::cuda
