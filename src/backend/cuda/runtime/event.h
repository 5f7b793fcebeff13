// An owned CUDA event with timing enabled, for ordering streams and measuring device time.
#pragma once

#include <cuda_runtime.h>

namespace fp8llm::cuda {

class Event {
 public:
  Event();
  ~Event();
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream);
  void synchronize() const;
  // Milliseconds of device time from `start` to this event (both recorded and completed).
  float elapsed_ms_since(const Event& start) const;

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace fp8llm::cuda
