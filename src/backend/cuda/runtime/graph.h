// A recorded sequence of stream work (a CUDA graph), instantiated for replay: launching it runs
// every recorded kernel and copy with one call, so that a decode step of a few hundred small
// kernels is not paced by the host's launch rate. Move-only.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/runtime/unique_handle.h"

namespace fp8llm::cuda {

// Records the work issued to one stream between begin() and end(); only the calling thread's
// work is captured (cudaStreamCaptureModeThreadLocal).
class GraphCapture {
 public:
  static void begin(cudaStream_t stream);
  // Ends the capture and returns the graph (owned by the caller).
  static cudaGraph_t end(cudaStream_t stream);
  // Ends a capture left open by an exception and drops what it recorded (a no-op if none is open).
  static void abandon(cudaStream_t stream) noexcept;
};

class GraphExec {
 public:
  GraphExec() = default;
  // Instantiates `graph` and destroys it (the executable copy is all that is kept).
  explicit GraphExec(cudaGraph_t graph);

  bool empty() const { return exec_.empty(); }
  void launch(cudaStream_t stream) const;

 private:
  struct Destroy {
    void operator()(cudaGraphExec_t exec) const noexcept;
  };
  UniqueHandle<cudaGraphExec_t, Destroy> exec_;
};

}  // namespace fp8llm::cuda
