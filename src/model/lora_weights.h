// A LoRA adapter as the backends hold it: for some of the seven projections of some layers, the
// low-rank factors A [rank, in] and B [out, rank] in bf16, and the scale (alpha / rank, or
// alpha / sqrt(rank) with rsLoRA). A projection with an adapter computes
//
//   y = linear(x) + float32(scale * ((x · Aᵀ) · Bᵀ))
//
// with x · Aᵀ and its product with Bᵀ each summed in fp32 (docs/FP8.md, "LoRA").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "formats/hf_config.h"
#include "model/backend.h"

namespace fp8llm {

struct LoraModule {
  int64_t layer = 0;
  LinearKind kind = LinearKind::Q;
  std::vector<uint16_t> a;  // [rank, in], bf16 bits
  std::vector<uint16_t> b;  // [out, rank], bf16 bits
};

struct LoraAdapter {
  int64_t rank = 0;
  float scale = 0;
  std::vector<LoraModule> modules;  // at most one per (layer, kind)
};

// One factor of an adapter in the memory of the device a backend runs on (a training loop's
// tensors handed to replace_lora): the backend checks its values and converts them there, so
// the factors never cross to the host.
struct LoraDeviceFactor {
  int64_t layer = 0;
  LinearKind kind = LinearKind::Q;
  bool is_b = false;  // B [out, rank], else A [rank, in]
  const void* data = nullptr;
  DType dtype = DType::BF16;  // BF16, F16 or F32
  std::string name;           // for errors
};

// The input and output widths of a layer projection.
struct ProjectionShape {
  int64_t in = 0;
  int64_t out = 0;
};
ProjectionShape projection_shape(const ModelConfig& config, LinearKind kind);

}  // namespace fp8llm
