// The CPU reference ops of a Llama-family forward pass (Llama, Mistral, Qwen2, Qwen3): fp32
// activations, each op defined as Hugging Face transformers defines it, so that an fp32 forward
// here reproduces a transformers fp32 forward. Matrix multiplies live in linear.h, RoPE in rope.h,
// attention in attention.h, and the logits helpers in logits.h; this header brings them all in.
//
// Row-wise and element-wise ops run on the shared thread pool once the input is large enough.
// Unless a comment says otherwise, `out` may be the same buffer as an input.
#pragma once

#include <cstdint>
#include <span>

#include "backend/cpu/attention.h"
#include "backend/cpu/logits.h"
#include "backend/cpu/rope.h"

namespace fp8llm::cpu {

// out[i, :] = table[ids[i], :] for a table [vocab, hidden]. An id outside [0, vocab) throws Error
// naming the id and the vocabulary size, before anything is written. out must not overlap table.
void embedding_lookup(const uint16_t* table_bf16, int64_t vocab, int64_t hidden,
                      std::span<const int32_t> ids, float* out);
void embedding_lookup(const float* table, int64_t vocab, int64_t hidden,
                      std::span<const int32_t> ids, float* out);

// Hugging Face LlamaRMSNorm of each row of x [rows, dim]:
//   out = weight * (x * rsqrt(mean(x^2) + eps))
// with x^2 rounded to float32 and summed exactly (double), the mean and mean + eps rounded to
// float32 like transformers' float32 tensors, and two float32 products at the end. For the
// per-head q_norm/k_norm of Qwen3, pass q [tokens, heads, head_dim] as rows = tokens * heads,
// dim = head_dim.
void rms_norm(const float* x, int64_t rows, int64_t dim, const uint16_t* weight_bf16, float eps,
              float* out);
void rms_norm(const float* x, int64_t rows, int64_t dim, const float* weight, float eps,
              float* out);

// out = silu(gate) * up, silu(g) = g / (1 + exp(-g)) in float32 (torch's silu).
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

// x += y (the residual connections).
void add_inplace(float* x, const float* y, int64_t n);

}  // namespace fp8llm::cpu
