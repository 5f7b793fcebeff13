// Loading a model onto a CUDA GPU: the device checks (FP8 tensor cores; enough free memory for the
// plan) before any weight is read, the checkpoint streamed into the weight arena and quantized
// there, then the backend, its activation memory, its token picker, and what the engine needs to
// size and make the paged KV cache from the memory left.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/timeline.h"
#include "fp8llm/engine.h"
#include "loader/load_plan.h"
#include "loader/weight_stream.h"
#include "model/backend.h"
#include "model/kv_cache.h"
#include "model/token_picker.h"
#include "model/weight_store.h"
#include "model/workspace.h"

namespace fp8llm {

struct CudaLoad {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<WeightStore> weights;
  std::unique_ptr<Workspace> workspace;
  std::unique_ptr<TokenPicker> picker;
  std::function<std::unique_ptr<KvStorage>(const KvCacheSpec&)> make_kv;
  uint64_t default_kv_bytes = 0;  // 90% of what is free once the rest is in place
  // Decode batch sizes recorded as CUDA graphs (padded up to), and the block-table width.
  std::vector<int64_t> recorded_batch_sizes;
  int64_t max_blocks_per_seq = 0;
  uint64_t resident_bytes = 0;     // weight bytes on the device
  uint64_t peak_device_bytes = 0;  // device memory in use at the load's high-water mark
};

// `options` has its defaults settled (max_batch_tokens > 0, kv_cache_dtype not Auto).
// `timeline` (may be null) receives the load's steps: context, checks, arena, streaming, set-up.
CudaLoad load_cuda_backend(const LoadPlan& plan, const LoadOptions& options, StreamStats* stats,
                           Timeline* timeline = nullptr);

// Device memory a load needs, from the plan alone.
struct CudaMemoryNeeds {
  uint64_t weights = 0;    // the weight arena
  uint64_t staging = 0;    // the stream's device staging buffers
  uint64_t kv_cache = 0;   // the smallest KV cache worth having: one context of 1024 positions
  uint64_t workspace = 0;  // activations, GEMM and attention scratch, batch arrays
  uint64_t total() const { return weights + staging + kv_cache + workspace; }
};
CudaMemoryNeeds cuda_memory_needs(const LoadPlan& plan, const LoadOptions& options);

// Throws Error before anything is loaded when the device cannot run the plan: FP8 modes need
// compute capability >= 8.9 (`compute_capability` as major * 10 + minor), and `free_bytes` must
// cover `needs`. `device` names the GPU in the message.
void check_cuda_device(const LoadPlan& plan, const CudaMemoryNeeds& needs, int compute_capability,
                       uint64_t free_bytes, const std::string& device);

}  // namespace fp8llm
