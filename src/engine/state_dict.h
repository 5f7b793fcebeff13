// The state dict (include/fp8llm/state_dict.h) over any Backend: which tensors the loaded model
// has under their Hugging Face names, in which form, and how to read one. The weight store only
// says how it holds each checkpoint tensor and copies its bytes (WeightStore); the names of scale
// tensors and the dequantization to BF16 are decided here, once for every backend.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "formats/hf_config.h"
#include "fp8llm/state_dict.h"
#include "model/weight_store.h"

namespace fp8llm {

// One tensor of the listing and where its bytes come from.
struct StateDictItem {
  StateDictEntry entry;
  WeightSpec spec;        // the checkpoint tensor it is (or, for a scale, belongs to)
  HeldWeight held;        // how the backend holds `spec`
  bool is_scale = false;  // the F32 scales of the FP8 projection `spec`
};

// The listing of `form`: expected_weights(config) in order, an FP8 projection's scale right after
// it (Stored) or the projection as BF16 (Dequantized).
std::vector<StateDictItem> state_dict_items(const ModelConfig& config, const WeightStore& weights,
                                            StateDictForm form);

// Copies `item` (from state_dict_items with the same `form`) into `out`, exactly its nbytes. A
// dequantized projection reads its codes and scales into a buffer of their own first.
void read_state_dict_item(const WeightStore& weights, const StateDictItem& item, StateDictForm form,
                          std::span<std::byte> out);

// deq = bf16_rne(float32(code) * scale) of W[n, k] with its scales in the checkpoint layout
// (weight_scale_shape), into `out` (n * k BF16 values).
void dequantize_to_bf16(Fp8Scheme scheme, const uint8_t* codes, const float* scales, int64_t n,
                        int64_t k, std::span<std::byte> out);

}  // namespace fp8llm
