// The FP8 (float8_e4m3fn) quantization schemes and their exact definition.
//
//   scale(amax) = amax * float32(1/448)   (1.0 where amax == 0)
//   q(x, s)     = e4m3_rne(clamp(float32(x) / s, -448, 448))   (true division, not x * (1/s))
//   deq(q)      = float32(q) * s
//
// Why the scale is a product: the references were made by PyTorch evaluating `amax / 448.0`. On
// CUDA, PyTorch divides by a scalar by multiplying with its float32 reciprocal; the result differs
// from the true quotient in the last bit for about half of all amax values, and codes at exact
// rounding ties then flip. The reference FP8 checkpoints (expected_fp8_*.safetensors: weight
// scales) and the reference FP8 logits (weight and activation scales) were made on the GPU and
// follow the product. The single-layer reference (linear_reference.safetensors) was made on the
// CPU, where the same expression is a true quotient: Fp8ScaleRule::Divide reproduces it.
//
// row:   weight W[N,K]: one scale per output row (amax over K), stored F32 [N, 1] as
//        `<name>_scale`. Activations x[T,K]: one scale per token (row), computed at run time.
// block: weight: one scale per 128x128 tile (edge tiles use the amax of what is there), stored
//        F32 [ceil(N/128), ceil(K/128)] as `<name>_scale_inv` (the name the fine-grained "fp8"
//        checkpoint format uses, although it holds the scale itself, not its inverse).
//        Activations: one scale per token per 128-column group (1x128; the last group partial).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/tensor.h"

namespace fp8llm {

enum class Fp8Scheme { Row, Block };

inline constexpr int64_t kFp8BlockSize = 128;

// "fp8-row" / "fp8-block" (CLI spelling) and "row" / "block".
std::optional<Fp8Scheme> parse_fp8_scheme(std::string_view text);
std::string_view fp8_scheme_name(Fp8Scheme scheme);  // "row" | "block"

// Shape of a weight's scale tensor: [N, 1] (row) or [ceil(N/128), ceil(K/128)] (block).
Shape weight_scale_shape(Fp8Scheme scheme, int64_t n, int64_t k);
// Shape of an activation's scales for x[T, K]: [T, 1] (row) or [T, ceil(K/128)] (block).
Shape activation_scale_shape(Fp8Scheme scheme, int64_t t, int64_t k);
// Checkpoint name of a weight's scale: "<weight>_scale" (row) / "<weight>_scale_inv" (block).
std::string weight_scale_name(Fp8Scheme scheme, std::string_view weight_name);

enum class Fp8ScaleRule {
  Divide,                // amax / 448
  MultiplyByReciprocal,  // amax * float32(1 / 448), i.e. amax * 0x1.24924Ap-9f
};

// scale(amax) as defined above (1 where amax == 0).
float fp8_scale_from_amax(float amax, Fp8ScaleRule rule = Fp8ScaleRule::MultiplyByReciprocal);

}  // namespace fp8llm
