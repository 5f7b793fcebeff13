// The CUDA backend (Hopper / Ada: FP8 tensor cores): loads a LoadPlan straight into GPU memory,
// quantizing on the device, and implements the Backend ops with bf16 weights (FP8 projections) and
// fp32 arithmetic. Activations, the residual stream and the KV cache are fp32, as on the CPU
// backend: every projection quantizes its input to FP8, and bf16 rounding upstream of that flips
// FP8 codes (measured in docs/FP8.md), so the CUDA backend tracks the CPU backend to within fp32
// rounding.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/cuda/gemm/cublaslt_gemm.h"
#include "backend/cuda/gemm/fp8_linear.h"
#include "backend/cuda/loading/device_weights.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/graph.h"
#include "backend/cuda/runtime/pinned_buffer.h"
#include "backend/cuda/runtime/stream.h"
#include "core/timeline.h"
#include "fp8llm/engine.h"
#include "loader/load_plan.h"
#include "loader/weight_stream.h"
#include "model/backend.h"

namespace fp8llm {

struct CudaLoad {
  std::unique_ptr<Backend> backend;
  uint64_t resident_bytes = 0;     // weight bytes on the device
  uint64_t peak_device_bytes = 0;  // device memory in use at the load's high-water mark
};

// Checks the GPU (FP8 tensor cores: compute capability >= 8.9 for fp8 modes; enough free memory
// for the plan) before reading any weight, then streams the checkpoint onto it.
// `timeline` (may be null) receives the load's steps: context, checks, arena, streaming, set-up.
CudaLoad load_cuda_backend(const LoadPlan& plan, const LoadOptions& options, StreamStats* stats,
                           Timeline* timeline = nullptr);

// Device memory a load needs, from the plan alone.
struct CudaMemoryNeeds {
  uint64_t weights = 0;     // the weight arena
  uint64_t staging = 0;     // the stream's device staging ring
  uint64_t kv_cache = 0;    // the KV cache as first allocated
  uint64_t workspace = 0;   // cuBLASLt workspace, activations, scratch
  size_t ring_buffers = 0;  // the staging ring's shape
  size_t buffer_bytes = 0;
  uint64_t total() const { return weights + staging + kv_cache + workspace; }
};
CudaMemoryNeeds cuda_memory_needs(const LoadPlan& plan, const LoadOptions& options);

// Throws Error before anything is loaded when the device cannot run the plan: FP8 modes need
// compute capability >= 8.9 (`compute_capability` as major * 10 + minor), and `free_bytes` must
// cover `needs`. `device` names the GPU in the message.
void check_cuda_device(const LoadPlan& plan, const CudaMemoryNeeds& needs, int compute_capability,
                       uint64_t free_bytes, const std::string& device);

namespace cuda {

class CudaBackend final : public Backend {
 public:
  // Allocates the weight arena (filled by a DeviceSink), the first KV cache block and the GEMM
  // workspace.
  // Runs `plan`'s model on `weights`, which hold the plan's tensors.
  CudaBackend(const LoadPlan& plan, const LoadOptions& options, DeviceWeights weights);

  DeviceWeights& weights() { return weights_; }
  const DeviceWeights& weights() const { return weights_; }
  cudaStream_t stream() const { return stream_.get(); }
  // KV cache positions allocated now (grown on demand up to cache_capacity()).
  int64_t kv_allocated() const { return kv_allocated_; }
  static int64_t initial_kv_positions(int64_t capacity);

  void begin_forward(int64_t tokens, int64_t past) override;
  Act alloc(int64_t rows, int64_t cols) override;
  Act rows(Act a, int64_t begin, int64_t count) override;
  void embed(std::span<const int32_t> ids, Act out) override;
  void rms_norm(Act in, int64_t layer, NormKind norm, Act out) override;
  void linear(Act in, int64_t layer, LinearKind kind, Act out) override;
  void rope(Act x, int64_t heads, std::span<const int64_t> positions) override;
  void attention(int64_t layer, Act q, Act k, Act v, int64_t past, Act out) override;
  void silu_mul(Act gate, Act up, Act out) override;
  void add(Act x, Act y) override;
  void read(Act in, float* host_out) override;
  TopToken top_token(Act logits) override;
  bool samples_on_device() const override { return true; }
  TopToken sample_token(Act logits, const SampleShape& shape, double uniform) override;
  void reset_cache() override { cached_ = 0; }
  int64_t cache_capacity() const override { return capacity_; }
  // The state dict (cuda_state_dict.cpp): FP8 projections as codes and scales (the device's padded
  // block-scale rows trimmed to the checkpoint layout), everything else as the bf16 it holds.
  HeldWeight held_weight(const WeightSpec& spec) const override;
  void read_weight(const WeightSpec& spec, std::span<std::byte> values,
                   std::span<float> scales) const override;

 private:
  const DeviceLinear& linear_weights(int64_t layer, LinearKind kind) const;
  const __nv_bfloat16* norm_weights(int64_t layer, NormKind kind) const;
  void grow_kv(int64_t positions);

  // One-token passes run eagerly once, are recorded as a graph the next time their buffers are the
  // same, and replayed after that: in Replay mode the ops only check their arguments and stage
  // the step's inputs (token id, position) in pinned memory, and read() launches the graph.
  enum class GraphMode { Eager, Capture, Replay };
  // The addresses a recorded step depends on.
  struct GraphKey {
    const void* chunk = nullptr;
    size_t chunks = 0;
    const void* fp8_scratch = nullptr;
    const void* bf16_input = nullptr;
    const void* k_cache = nullptr;
    const void* v_cache = nullptr;
    int64_t kv_allocated = 0;
    const void* ids = nullptr;
    const void* positions = nullptr;
    bool operator==(const GraphKey&) const = default;
  };
  GraphKey graph_key() const;
  // End of a pass: launches what waits (deferred ops, the recorded step) and returns the pass's
  // mode; pass_done waits for the stream and remembers a one-token pass's buffers.
  GraphMode finish_pass();
  void pass_done(GraphMode mode);
  // Copies the (id, logprob) pair a token kernel wrote, after the pass ends.
  TopToken fetch_token(GraphMode mode);
  void ensure_token_buffers();

  // A residual add waits for the op after it: a norm of the sum fuses with it, anything else
  // launches it first.
  struct PendingAdd {
    float* x = nullptr;
    const float* y = nullptr;
    int64_t count = 0;
  };
  void flush_add();
  std::optional<PendingAdd> pending_add_;

  // One-token FP8 projections of the same input wait too, and run as one group
  // (Fp8Linear::forward_group) when the next op is not another of them.
  struct PendingLinear {
    const Fp8DeviceWeight* w = nullptr;
    float* y = nullptr;
  };
  void flush_linears();
  const float* pending_linear_input_ = nullptr;
  std::vector<PendingLinear> pending_linears_;
  // Rotary embeddings wait for the attention after them: rope of q and of k then run as one
  // kernel that also appends k and v to the cache.
  struct PendingRope {
    float* x = nullptr;
    int64_t rows = 0;
    int64_t heads = 0;
  };
  void flush_ropes();
  std::vector<PendingRope> pending_ropes_;
  void flush_pending() {
    flush_add();
    flush_linears();
    flush_ropes();
  }

  ModelConfig config_;
  DeviceWeights weights_;
  Stream stream_;
  CublasLtGemm gemm_;
  Fp8Linear fp8_;
  int64_t capacity_;
  DeviceBuffer inv_freq_;  // RoPE inverse frequencies from the CPU's table (fp32, bit for bit)
  // KV cache: [layers][kv_allocated_][kv_heads * head_dim] fp32 each.
  DeviceBuffer k_cache_, v_cache_;
  int64_t kv_allocated_ = 0;
  int64_t cached_ = 0;  // positions of the current sequence in the cache
  // Activations of the current pass: bump allocation in chunks that never move.
  std::vector<DeviceBuffer> chunks_;
  size_t chunk_used_ = 0;
  DeviceBuffer ids_, positions_;            // this pass's token ids and positions on the device
  PinnedBuffer host_ids_, host_positions_;  // and their staging copies
  int64_t pass_tokens_ = 0;
  GraphMode mode_ = GraphMode::Eager;
  GraphExec decode_graph_;
  GraphKey decode_graph_key_;
  std::optional<GraphKey> last_eager_decode_key_;
  // Decoding splits each head's keys over this many blocks (model_kernels.h AttentionSplit).
  static constexpr int kDecodeAttentionSplits = 16;
  DeviceBuffer attention_partial_, attention_counters_;
  DeviceBuffer top_device_;  // top_token's result: id, logprob
  PinnedBuffer top_host_;
  DeviceBuffer bf16_input_;  // the bf16 copy of a bf16-weight projection's input
};

}  // namespace cuda
}  // namespace fp8llm
