// Rotary position embedding (RoPE) on the CPU, as Hugging Face transformers applies it (the
// frequencies: model/rope_table.h). The rotation uses the "half-split" layout of transformers'
// `rotate_half`: dimension i pairs with i + head_dim/2 (not the interleaved pairs of the original
// Llama code).
#pragma once

#include <cstdint>
#include <span>

#include "model/rope_table.h"

namespace fp8llm::cpu {

// Rotates x [tokens, heads, head_dim] in place: token t is at absolute position positions[t].
// x_out = x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x[D/2:], x[:D/2]).
void apply_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                std::span<const int64_t> positions, const RopeTable& table);

}  // namespace fp8llm::cpu
