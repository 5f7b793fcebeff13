#include "backend/cuda/cuda_load.h"

#include <algorithm>
#include <optional>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_kv_storage.h"
#include "backend/cuda/cuda_token_picker.h"
#include "backend/cuda/cuda_weight_store.h"
#include "backend/cuda/cuda_workspace.h"
#include "backend/cuda/kernels/paged_attention.h"
#include "backend/cuda/loading/device_sink.h"
#include "backend/cuda/loading/device_stream.h"
#include "backend/cuda/runtime/cublaslt_handle.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "backend/cuda/runtime/device.h"
#include "core/error.h"
#include "core/log.h"

namespace fp8llm {
namespace {

constexpr size_t kAlign = 256;

size_t align_up(size_t v) {
  return (v + kAlign - 1) / kAlign * kAlign;
}

std::string gib(uint64_t bytes) {
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1ull << 30));
}

int64_t context_of(const ModelConfig& c, const LoadOptions& options) {
  return options.max_context > 0 ? std::min(options.max_context, c.max_position_embeddings)
                                 : c.max_position_embeddings;
}

KvCacheSpec kv_spec(const ModelConfig& c, const LoadOptions& options, int64_t positions) {
  KvCacheSpec s;
  s.layers = c.num_layers;
  s.block_size = options.block_size;
  s.kv_heads = c.num_kv_heads;
  s.head_dim = c.head_dim;
  s.dtype =
      options.kv_cache_dtype == KvCacheDtype::Auto ? KvCacheDtype::BF16 : options.kv_cache_dtype;
  s.blocks = (positions + s.block_size - 1) / s.block_size + 1;
  return s;
}

cuda::CudaBackendLimits limits_of(const ModelConfig& c, const LoadOptions& options) {
  const int64_t block = std::max<int64_t>(options.block_size, 1);
  return {.max_tokens = std::max(options.max_batch_tokens, options.max_seqs),
          .max_seqs = options.max_seqs,
          .max_blocks = (context_of(c, options) + block - 1) / block,
          .fp8_gemm = options.fp8_gemm};
}

// Bytes of one pass's activations per token (what LlamaModel allocates for every token), and per
// row of logits.
uint64_t activation_bytes_per_token(const ModelConfig& c) {
  const int64_t q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  return sizeof(float) * static_cast<uint64_t>(3 * c.hidden_size + 2 * q_dim + 2 * kv_dim +
                                               2 * c.intermediate_size);
}
uint64_t bytes_per_logit_row(const ModelConfig& c) {
  return sizeof(float) * static_cast<uint64_t>(c.hidden_size + c.vocab_size);
}

uint64_t workspace_bytes(const ModelConfig& c, const cuda::CudaBackendLimits& l) {
  // Every allocation rounds up to 256 bytes: 12 of them per pass.
  return static_cast<uint64_t>(l.max_tokens) * activation_bytes_per_token(c) +
         static_cast<uint64_t>(l.max_seqs) * bytes_per_logit_row(c) + 16 * kAlign;
}

// The buffers the backend sizes for its limits besides the activations: FP8 and bf16 inputs, the
// decode attention's scratch, the batch arrays, the joined q/k/v outputs, cuBLASLt's workspace.
uint64_t scratch_bytes(const ModelConfig& c, const cuda::CudaBackendLimits& l) {
  const auto widest = static_cast<uint64_t>(
      std::max({c.hidden_size, c.intermediate_size, c.num_heads * c.head_dim}));
  const auto tokens = static_cast<uint64_t>(l.max_tokens);
  const uint64_t fp8_input = tokens * widest + 2 * tokens * (widest / 128 + 1) * 4;
  const uint64_t bf16_input = tokens * widest * 2;
  const uint64_t decode = static_cast<uint64_t>(l.max_seqs * c.num_heads) *
                          (cuda::kDecodeMaxSplits * static_cast<uint64_t>(c.head_dim + 2) + 1) * 4;
  const uint64_t batch = tokens * 36 + static_cast<uint64_t>(l.max_seqs * l.max_blocks) * 4;
  const uint64_t joined = std::min<uint64_t>(tokens, cuda::kFp8JoinInPlaceMaxRows) *
                          static_cast<uint64_t>((c.num_heads + 2 * c.num_kv_heads) * c.head_dim) *
                          4;
  return fp8_input + bf16_input + decode + batch + joined + cuda::kCublasLtWorkspaceBytes;
}

std::vector<int64_t> graph_sizes(const LoadOptions& options) {
  std::vector<int64_t> sizes;
  if (!options.cuda_graphs) return sizes;
  for (int64_t s = 1; s < options.max_seqs; s *= 2) sizes.push_back(s);
  sizes.push_back(options.max_seqs);
  return sizes;
}

}  // namespace

CudaMemoryNeeds cuda_memory_needs(const LoadPlan& plan, const LoadOptions& options) {
  CudaMemoryNeeds n;
  n.weights = cuda::DeviceWeights::arena_bytes_for(plan);
  // A staged tensor (quantized, or converted from F16/F32) is staged whole on the device, in one
  // of the stream's staging buffers, each the size of the largest staged tensor. The chunks the
  // files are read and registered in have a fixed size: a tensor may span several of them.
  uint64_t largest_staged = 0;
  for (const PlannedTensor& t : plan.tensors) {
    if (t.quantize || t.source.info->dtype != DType::BF16)
      largest_staged = std::max(largest_staged, t.source.info->nbytes);
  }
  // The streamer's defaults are its fastest measured setting (docs/PERFORMANCE.md).
  const cuda::DeviceStreamOptions defaults;
  n.staging = largest_staged > 0
                  ? defaults.staging_buffers * std::max<uint64_t>(align_up(largest_staged), kAlign)
                  : 0;
  const int64_t first_context = std::min<int64_t>(context_of(plan.config, options), 1024);
  n.kv_cache = cuda::CudaKvStorage::bytes_for(kv_spec(plan.config, options, first_context));
  const cuda::CudaBackendLimits limits = limits_of(plan.config, options);
  n.workspace = workspace_bytes(plan.config, limits) + scratch_bytes(plan.config, limits);
  return n;
}

void check_cuda_device(const LoadPlan& plan, const CudaMemoryNeeds& needs, int compute_capability,
                       uint64_t free_bytes, const std::string& device) {
  if (plan.scheme && compute_capability < 89) {
    fail(
        "--device cuda: --quantization fp8-{} needs FP8 tensor cores (compute capability 8.9 or "
        "newer: Ada, Hopper); {} has {}.{} (use --quantization none, or --device cpu)",
        fp8_scheme_name(*plan.scheme), device, compute_capability / 10, compute_capability % 10);
  }
  if (free_bytes < needs.total()) {
    fail(
        "--device cuda: loading needs {} of GPU memory ({} weights, {} staging, {} KV cache, {} "
        "workspace) but {} has {} free",
        gib(needs.total()), gib(needs.weights), gib(needs.staging), gib(needs.kv_cache),
        gib(needs.workspace), device, gib(free_bytes));
  }
}

CudaLoad load_cuda_backend(const LoadPlan& plan, const LoadOptions& options, StreamStats* stats,
                           Timeline* timeline) {
  {
    // The driver's start and the context's creation: about 0.2 s in a process's first load, next
    // to nothing in its later ones.
    const Timeline::Step step(timeline, "CUDA start-up");
    FP8LLM_CHECK(cuda::device_available(),
                 "--device cuda: no CUDA device is available (use --device cpu)");
    CUDA_CHECK(cudaFree(nullptr));
  }
  std::optional<Timeline::Step> checking(std::in_place, timeline, "device check");
  const CudaMemoryNeeds needs = cuda_memory_needs(plan, options);
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  check_cuda_device(plan, needs, cuda::device_compute_capability(), free_bytes,
                    cuda::device_description());
  const uint64_t used_before = total_bytes - free_bytes;
  checking.reset();

  std::optional<Timeline::Step> arena(std::in_place, timeline, "weights arena");
  cuda::DeviceWeights weights(plan);
  arena.reset();
  cuda::DeviceSink sink(weights);
  std::optional<Timeline::Step> streaming(std::in_place, timeline, "stream weights");
  const cuda::DeviceStreamStats streamed =
      cuda::stream_to_device(plan, sink, cuda::DeviceStreamOptions{}, options.progress);
  streaming.reset();
  {
    const Timeline::Step step(timeline, "device finish");
    CUDA_CHECK(cudaDeviceSynchronize());
  }
  FP8LLM_CHECK(sink.tensors_done() == plan.tensors.size(),
               "--device cuda: {} of {} tensors were loaded", sink.tensors_done(),
               plan.tensors.size());
  std::optional<Timeline::Step> setup(std::in_place, timeline, "backend set-up");
  const cuda::CudaBackendLimits limits = limits_of(plan.config, options);
  auto backend = std::make_unique<cuda::CudaBackend>(plan.config, std::move(weights), limits);
  const cudaStream_t stream = backend->stream();
  CudaLoad load;
  load.weights = std::make_unique<cuda::CudaWeightStore>(backend->weights(), stream);
  load.workspace = std::make_unique<cuda::CudaWorkspace>(workspace_bytes(plan.config, limits));
  load.picker = std::make_unique<cuda::CudaTokenPicker>(stream);
  load.make_kv = [stream](const KvCacheSpec& spec) {
    return std::make_unique<cuda::CudaKvStorage>(spec, stream);
  };
  load.recorded_batch_sizes = graph_sizes(options);
  load.max_blocks_per_seq = limits.max_blocks;
  CUDA_CHECK(cudaDeviceSynchronize());
  setup.reset();
  if (stats) *stats = streamed.stream;

  load.resident_bytes = backend->weights().arena_bytes();
  // While streaming, the arena and the staging ring are alive (and the measured figure, taken as
  // the stream finishes, also holds what CUDA allocated for itself); the workspace and scratch are
  // allocated after the ring is freed.
  const uint64_t allocated =
      load.resident_bytes + std::max<uint64_t>(streamed.staging_device_bytes, needs.workspace);
  const uint64_t measured =
      sink.device_used_at_finish() > used_before ? sink.device_used_at_finish() - used_before : 0;
  load.peak_device_bytes = std::max(allocated, measured);
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  // What is left, less a margin for the libraries' own allocations as passes of new shapes run.
  const uint64_t margin = 512ull << 20;
  load.default_kv_bytes = free_bytes * 9 / 10 > margin ? free_bytes * 9 / 10 - margin : 0;
  log_info("cuda: {} weights on {}; peak device memory while loading {} (staging {}); {} free",
           gib(load.resident_bytes), cuda::device_description(), gib(load.peak_device_bytes),
           gib(streamed.staging_device_bytes), gib(free_bytes));
  load.backend = std::move(backend);
  return load;
}

}  // namespace fp8llm
