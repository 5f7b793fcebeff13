#include "backend/cuda/runtime/graph.h"

#include <utility>

#include "backend/cuda/runtime/cuda_check.h"
#include "core/log.h"

namespace fp8llm::cuda {

void GraphCapture::begin(cudaStream_t stream) {
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
}

cudaGraph_t GraphCapture::end(cudaStream_t stream) {
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  return graph;
}

void GraphCapture::abandon(cudaStream_t stream) noexcept {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) != cudaSuccess) return;
  if (status == cudaStreamCaptureStatusNone) return;
  cudaGraph_t graph = nullptr;
  (void)cudaStreamEndCapture(stream, &graph);
  if (graph != nullptr) (void)cudaGraphDestroy(graph);
  (void)cudaGetLastError();  // clear the error the invalidated capture reported
}

GraphExec::GraphExec(cudaGraph_t graph) {
  const cudaError_t err = cudaGraphInstantiate(&exec_, graph, 0);
  const cudaError_t destroyed = cudaGraphDestroy(graph);
  CUDA_CHECK(err);
  CUDA_CHECK(destroyed);
}

GraphExec::~GraphExec() {
  release();
}

GraphExec::GraphExec(GraphExec&& other) noexcept : exec_(std::exchange(other.exec_, nullptr)) {}

GraphExec& GraphExec::operator=(GraphExec&& other) noexcept {
  if (this != &other) {
    release();
    exec_ = std::exchange(other.exec_, nullptr);
  }
  return *this;
}

void GraphExec::launch(cudaStream_t stream) const {
  CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

void GraphExec::release() noexcept {
  if (exec_ == nullptr) return;
  const cudaError_t err = cudaGraphExecDestroy(exec_);
  if (err != cudaSuccess) log_warning("cudaGraphExecDestroy failed: {}", cudaGetErrorString(err));
  exec_ = nullptr;
}

}  // namespace fp8llm::cuda
