// The forward pass's kernels besides the GEMMs, on fp32 activations (weights bf16). Each computes
// what the CPU backend computes, operation for operation in fp32 (rounding points noted per
// kernel), so that the two backends agree to within fp32 rounding: activations are quantized to
// FP8 before every projection, and any coarser rounding upstream flips FP8 codes (docs/FP8.md).
// All launches are asynchronous on `stream`; every pointer is device memory.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace fp8llm::cuda {

// out[t, :] = float(table[ids[t], :]) for t < tokens (ids checked by the caller).
void launch_embed(const __nv_bfloat16* table, const int32_t* ids, int64_t tokens, int64_t hidden,
                  float* out, cudaStream_t stream);

// RMSNorm of `rows` rows of `dim` (out may be x): y = w * (x * inv_rms), inv_rms =
// float(1 / sqrt(double(float(sum of squares / dim) + eps))), the squares summed in double
// (transformers' LlamaRMSNorm in fp32, as the CPU backend computes it).
void launch_rms_norm(const float* x, int64_t rows, int64_t dim, const __nv_bfloat16* w, float eps,
                     float* out, cudaStream_t stream);
// x += residual, then out = RMSNorm(x) as above (the residual add and the norm after it in one
// pass; out may not alias x). dim <= 16384 for both.
void launch_add_rms_norm(float* x, const float* residual, int64_t rows, int64_t dim,
                         const __nv_bfloat16* w, float eps, float* out, cudaStream_t stream);

// Rotary embedding in place on x [tokens, heads, head_dim] (half-split layout): angle = fp32
// (inv_freq[i] * position), cos/sin of it computed in double as the CPU backend does, each product
// rounded to fp32.
void launch_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                 const int64_t* positions, const float* inv_freq, cudaStream_t stream);

// launch_rope on q and on k, then launch_kv_append of the rotated k and v, in one launch.
void launch_rope_qk_append(float* q, float* k, const float* v, int64_t tokens, int64_t heads,
                           int64_t kv_heads, int64_t head_dim, const int64_t* positions,
                           const float* inv_freq, float* k_cache, float* v_cache,
                           cudaStream_t stream);

// Writes k, v [tokens, kv_dim] into rows positions[t] of k/v_cache [positions, kv_dim]. The
// positions are read on the device, so that a recorded decode step (graph.h) replays at any
// position.
void launch_kv_append(const float* k, const float* v, int64_t tokens, int64_t kv_dim,
                      const int64_t* positions, float* k_cache, float* v_cache,
                      cudaStream_t stream);

// Causal GQA attention of q [tokens, heads, head_dim] (token t at position positions[t], read on
// the device) over the cache's positions 0..positions[t] (k/v_cache [positions, kv_heads,
// head_dim]), fp32 online softmax with scale 1/sqrt(head_dim); out [tokens, heads, head_dim].
// head_dim <= 256.
// Splitting each (token, head) over `splits` blocks (for one-token passes, where heads alone are
// too few blocks): `partial` holds tokens * heads * splits * (head_dim + 2) floats and `counters`
// tokens * heads ints, zero before the first launch (the kernel leaves them zero).
struct AttentionSplit {
  int splits = 1;
  float* partial = nullptr;
  int* counters = nullptr;
};
void launch_attention(const float* q, int64_t tokens, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, const float* k_cache, const float* v_cache,
                      const int64_t* positions, float* out, cudaStream_t stream,
                      const AttentionSplit& split = {});
inline constexpr int64_t kAttentionMaxHeadDim = 256;

// out = (gate / (1 + exp(-gate))) * up (out may be gate).
void launch_silu_mul(const float* gate, const float* up, int64_t count, float* out,
                     cudaStream_t stream);

// The first index of the largest of logits[0..n) into *id_out and its log-softmax into
// *logprob_out (device memory), as model/top_token.h computes on the host.
void launch_top_token(const float* logits, int64_t n, int32_t* id_out, float* logprob_out,
                      cudaStream_t stream);

// A draw from softmax(logits[0..n) / temperature) as Backend::sample_token defines it, with
// `uniform` in [0, 1): the first index at which the running sum (index order) of
// exp((logit - max) / temperature) exceeds uniform * total; and the raw log-softmax there.
void launch_sample_token(const float* logits, int64_t n, float temperature, double uniform,
                         int32_t* id_out, float* logprob_out, cudaStream_t stream);

// x = x + y.
void launch_add(float* x, const float* y, int64_t count, cudaStream_t stream);

// F16 or F32 source values -> bf16 (round to nearest even); BF16 is copied.
void launch_to_bf16(DType dtype, const void* in, int64_t count, __nv_bfloat16* out,
                    cudaStream_t stream);

// A pre-quantized checkpoint's weight scales (F32, BF16 or F16; `in_count` == rows * cols, or 1
// for one per-tensor scale) -> fp32 out[rows][ld], columns cols.. of each row left as they are.
void launch_scales_to_f32(DType dtype, const void* in, int64_t in_count, int64_t rows, int64_t cols,
                          int64_t ld, float* out, cudaStream_t stream);

}  // namespace fp8llm::cuda
