// The CUDA backend (Hopper / Ada: FP8 tensor cores): the Backend ops on fp32 activations over
// weights in one device arena (FP8 projections, bf16 everything else). Activations and the
// residual stream stay fp32, as on the CPU backend: every projection quantizes its input to FP8,
// and bf16 rounding upstream of that flips FP8 codes (docs/FP8.md), so the two backends agree to
// within fp32 rounding.
//
// Fused ops: add_rms_norm (one kernel), linear_group (one quantization of the input for all its
// projections, and one grouped kernel for one-token passes), the *_for norms and gating (their
// output quantized for the FP8 projections after them in the same kernel: fused_quant.h),
// rope_append_kv (RoPE of q and k and the paged KV write in one kernel), qkv_rope_append_kv (that
// kernel reading q, k and v, adapters added, where the joined q/k/v GEMM wrote them: Fp8Linear::
// forward_group_joined). Every
// op only launches work on the backend's stream; the batch arrays are copied to fixed device
// buffers by prepare(), so run_pass() can record a decode step as a CUDA graph and replay it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "backend/cuda/cuda_lora.h"
#include "backend/cuda/gemm/cublaslt_gemm.h"
#include "backend/cuda/gemm/fp8_linear.h"
#include "backend/cuda/kernels/paged_attention.h"
#include "backend/cuda/loading/device_weights.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/event.h"
#include "backend/cuda/runtime/graph.h"
#include "backend/cuda/runtime/pinned_buffer.h"
#include "backend/cuda/runtime/stream.h"
#include "formats/hf_config.h"
#include "fp8llm/modes.h"
#include "model/backend.h"

namespace fp8llm::cuda {

struct CudaBackendLimits {
  int64_t max_tokens = 0;  // tokens in one pass
  int64_t max_seqs = 0;    // sequences in one pass
  int64_t max_blocks = 0;  // block-table width
  Fp8Gemm fp8_gemm = Fp8Gemm::TensorCore;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const ModelConfig& config, DeviceWeights weights, CudaBackendLimits limits);

  const DeviceWeights& weights() const { return weights_; }
  DeviceWeights& weights() { return weights_; }
  cudaStream_t stream() const { return stream_.get(); }

  BatchView prepare(const Batch& batch) override;
  void embed(const BatchView& batch, Act out) override;
  void rms_norm(Act in, int64_t layer, NormKind norm, Act out) override;
  void add_rms_norm(Act x, Act y, int64_t layer, NormKind norm, Act out) override;
  void rms_norm_for(Act in, int64_t layer, NormKind norm, Act out, NextLinear next) override;
  void add_rms_norm_for(Act x, Act y, int64_t layer, NormKind norm, Act out,
                        NextLinear next) override;
  void silu_mul_for(Act gate, Act up, Act out, NextLinear next) override;
  void linear(Act in, int64_t layer, LinearKind kind, Act out) override;
  void linear_group(Act in, int64_t layer, std::span<const LinearKind> kinds,
                    std::span<const Act> outs) override;
  void rope(Act x, int64_t heads, const BatchView& batch) override;
  void append_kv(int64_t layer, Act k, Act v, const KvCacheView& kv,
                 const BatchView& batch) override;
  void rope_append_kv(int64_t layer, Act q, Act k, Act v, const KvCacheView& kv,
                      const BatchView& batch) override;
  void qkv_rope_append_kv(Act in, int64_t layer, Act q, Act k, Act v, const KvCacheView& kv,
                          const BatchView& batch) override;
  void attention(int64_t layer, Act q, const KvCacheView& kv, const BatchView& batch,
                 Act out) override;
  void silu_mul(Act gate, Act up, Act out) override;
  void add(Act x, Act y) override;
  void gather_rows(Act in, const BatchView& batch, Act out) override;
  void read(Act in, float* host_out) override;
  void reserve_lora(int slots, int64_t max_rank) override;
  void set_lora(int slot, const LoraAdapter* adapter) override;
  void lora(Act in, int64_t layer, LinearKind kind, const BatchView& batch, Act out) override;
  void lora_shrink(Act in, int64_t layer, std::span<const LinearKind> kinds,
                   const BatchView& batch) override;
  void lora_expand(Act in, int64_t layer, std::span<const LinearKind> kinds, const BatchView& batch,
                   std::span<const Act> outs) override;
  // Up to kLoraInGemvMaxRows tokens on the tensor cores: the adapters in the GEMV's own launch
  // (kernels/fp8_gemv.h); otherwise the shrink beside the projection and the expand after it.
  void linear_group_lora(Act in, int64_t layer, std::span<const LinearKind> kinds,
                         const BatchView& batch, std::span<const Act> outs) override;
  void stage_lora(int slot, int64_t rank, std::span<const LoraDeviceFactor> factors) override;
  void commit_lora(int slot) override;
  // Decode steps whose sequences all hold at most kDecodeShortKeys keys (0) and the others (1):
  // their decode attention grids differ (paged_attention.h, decode_ranges_bound).
  int recording_variant(const Batch& batch) const override;
  void run_pass(int64_t key, const std::function<void()>& pass) override;
  void forget_recorded_passes() override;

 private:
  void expand_lora(Act in, int64_t layer, std::span<const LinearKind> kinds, const BatchView& batch,
                   std::span<const Act> outs);
  const DeviceLinear& linear_weights(int64_t layer, LinearKind kind) const;
  // The FP8 weights of `kinds`, or empty where one of them is not FP8.
  std::vector<const Fp8DeviceWeight*> fp8_weights(int64_t layer,
                                                  std::span<const LinearKind> kinds) const;
  // fp8_weights after checking each weight against `in` and its output (an error naming `op`
  // where the shapes do not agree).
  std::vector<const Fp8DeviceWeight*> checked_fp8_weights(Act in, int64_t layer,
                                                          std::span<const LinearKind> kinds,
                                                          std::span<const Act> outs,
                                                          const char* op) const;
  // Room in Fp8Linear's scratch for `out` quantized for `next`, remembered as prepared_; nothing
  // where the fused kernels or a shared quantization do not apply.
  std::optional<Fp8Linear::QuantizedInput> prepare_input(Act out, NextLinear next);
  // What was prepared for `in` and these projections (and forgets it), or nothing.
  std::optional<Fp8Linear::QuantizedInput> take_prepared(Act in, int64_t layer,
                                                         std::span<const LinearKind> kinds);
  const __nv_bfloat16* norm_weights(int64_t layer, NormKind kind) const;
  int64_t norm_dim(NormKind kind) const;
  PagedBatch paged(const BatchView& batch) const;
  PagedKv paged(const KvCacheView& kv, int64_t layer) const;

  ModelConfig config_;
  DeviceWeights weights_;
  CudaBackendLimits limits_;
  Stream stream_;
  CublasLtGemm gemm_;
  Fp8Linear fp8_;
  PrefillAttention prefill_attention_ = PrefillAttention::Fp32;  // how prompt tokens attend
  DeviceBuffer inv_freq_;    // RoPE inverse frequencies (fp32, bit for bit as the CPU's)
  DeviceBuffer bf16_input_;  // the bf16 copy of a bf16-weight projection's input
  // The batch arrays, at fixed device addresses, and their pinned staging copy.
  DeviceBuffer batch_device_;
  PinnedBuffer batch_host_;
  std::vector<int32_t> lora_rows_, lora_row_slots_;  // prepare()'s grouping of the LoRA tokens
  BatchView view_;
  int64_t decode_tokens_ = 0;  // leading tokens that are the one token of their sequence
  DeviceBuffer decode_partial_, decode_counters_;
  // The activation a *_for op quantized as it wrote it, for the projections it named.
  struct PreparedInput {
    const void* data = nullptr;
    int64_t rows = 0, cols = 0, layer = 0;
    std::vector<LinearKind> kinds;
    Fp8Linear::QuantizedInput input;
    bool values_written = true;  // false: only the codes and scales were (NextLinear::values_read)
  };
  std::optional<PreparedInput> prepared_;
  // Recorded passes by key (Backend::run_pass), and whether each was run once eagerly first.
  std::map<int64_t, GraphExec> graphs_;
  std::map<int64_t, int> runs_;
  CudaLora lora_;
  // The LoRA shrink runs on lora_stream_, beside the base projection: forked from stream_ at
  // lora_fork_, joined back before the expand at lora_join_ (a recorded pass keeps both branches).
  Stream lora_stream_;
  Event lora_fork_, lora_join_;
};

}  // namespace fp8llm::cuda
