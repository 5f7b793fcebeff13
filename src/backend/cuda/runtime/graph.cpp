#include "backend/cuda/runtime/graph.h"

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
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  const cudaError_t destroyed = cudaGraphDestroy(graph);
  CUDA_CHECK(err);
  exec_ = UniqueHandle<cudaGraphExec_t, Destroy>(exec);
  CUDA_CHECK(destroyed);
}

void GraphExec::Destroy::operator()(cudaGraphExec_t exec) const noexcept {
  const cudaError_t err = cudaGraphExecDestroy(exec);
  if (err != cudaSuccess) log_warning("cudaGraphExecDestroy failed: {}", cudaGetErrorString(err));
}

void GraphExec::launch(cudaStream_t stream) const {
  CUDA_CHECK(cudaGraphLaunch(exec_.get(), stream));
}

}  // namespace fp8llm::cuda
