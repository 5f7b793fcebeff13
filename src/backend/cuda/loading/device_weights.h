// The model's weights in GPU memory: one allocation (an arena) laid out from the LoadPlan before
// any byte is read, holding each tensor at its final address. Quantized projections are FP8 codes
// plus fp32 scales in the layouts Fp8Linear reads (fp8_quant.h; block scales with a leading
// dimension padded to a multiple of 4 for cuBLASLt); everything else (embeddings, norms, biases,
// lm_head, and the projections in mode none) is bf16. A tied lm_head is the embedding table. A
// pre-quantized checkpoint's projections keep their own codes, and their scale tensors get slots of
// their own (fp32, in the same device layout) that the projections point at.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/cuda/gemm/fp8_linear.h"
#include "backend/cuda/loading/arena_layout.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/pinned_buffer.h"
#include "loader/load_plan.h"

namespace fp8llm::cuda {

// Where one planned tensor lives.
struct DeviceTensorSlot {
  void* data = nullptr;     // bf16 values, or the e4m3 codes of a quantized weight
  float* scales = nullptr;  // quantized only
  int64_t scale_ld = 0;     // block scales' leading dimension
  int64_t rows = 0;         // a 1-D tensor is one row
  int64_t cols = 0;
  bool is_scale = false;  // a pre-quantized projection's fp32 scales: [rows][scale_ld]
};

// A linear layer's weight: FP8 (fp8.q set) or bf16 (w set); bias in both (or null).
struct DeviceLinear {
  Fp8DeviceWeight fp8;
  const __nv_bfloat16* w = nullptr;
  int64_t n = 0;
  int64_t k = 0;
  const __nv_bfloat16* bias = nullptr;
  bool is_fp8() const { return fp8.q != nullptr; }
};

struct DeviceLayer {
  DeviceLinear q, k, v, o, gate, up, down;
  const __nv_bfloat16* input_norm = nullptr;
  const __nv_bfloat16* post_attention_norm = nullptr;
  const __nv_bfloat16* q_norm = nullptr;  // qwen3
  const __nv_bfloat16* k_norm = nullptr;
};

class DeviceWeights {
 public:
  // Bytes the arena for `plan` takes (what the constructor allocates).
  static uint64_t arena_bytes_for(const LoadPlan& plan);

  // Lays the plan's tensors out (arena_layout.h) and allocates the arena (zeroed); the contents
  // arrive through DeviceSink.
  explicit DeviceWeights(const LoadPlan& plan);

  // nullptr for a name the plan does not hold.
  const DeviceTensorSlot* slot(const std::string& name) const;
  uint64_t arena_bytes() const { return arena_bytes_; }

  // Sleep level 2: copies the arena into pinned host memory and frees it; back into a new arena,
  // which may be elsewhere: every slot and layer pointer moves with it. Nothing may be running on
  // the device over the weights meanwhile.
  void move_to_host();
  void move_to_device();
  bool on_host() const { return arena_.empty() && arena_bytes_ > 0; }

  const DeviceLayer& layer(int64_t l) const { return layers_[static_cast<size_t>(l)]; }
  const __nv_bfloat16* embed() const { return embed_; }
  int64_t vocab_size() const { return vocab_; }
  int64_t hidden_size() const { return hidden_; }
  const __nv_bfloat16* final_norm() const { return final_norm_; }
  const DeviceLinear& lm_head() const { return lm_head_; }

 private:
  DeviceWeights(const LoadPlan& plan, const ArenaLayout& layout);
  // Moves every pointer into the arena from `from` to `to` (the new arena's base).
  void rebase(const std::byte* from, const std::byte* to);

  DeviceBuffer arena_;
  uint64_t arena_bytes_ = 0;
  PinnedBuffer host_copy_;                // the arena while it is on the host
  const std::byte* host_base_ = nullptr;  // the arena's address when it moved to the host
  std::vector<DeviceTensorSlot> slots_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<DeviceLayer> layers_;
  const __nv_bfloat16* embed_ = nullptr;
  int64_t vocab_ = 0;
  int64_t hidden_ = 0;
  const __nv_bfloat16* final_norm_ = nullptr;
  DeviceLinear lm_head_;
};

}  // namespace fp8llm::cuda
