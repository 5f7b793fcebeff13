// An owned CUDA event with timing enabled, for ordering streams and measuring device time.
// Move-only.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/runtime/unique_handle.h"

namespace fp8llm::cuda {

class Event {
 public:
  Event();

  cudaEvent_t get() const { return event_.get(); }
  void record(cudaStream_t stream);
  void synchronize() const;
  // Milliseconds of device time from `start` to this event (both recorded and completed).
  float elapsed_ms_since(const Event& start) const;

 private:
  struct Destroy {
    void operator()(cudaEvent_t event) const noexcept;
  };
  UniqueHandle<cudaEvent_t, Destroy> event_;
};

}  // namespace fp8llm::cuda
