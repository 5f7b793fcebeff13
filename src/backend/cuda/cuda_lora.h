// LoRA adapters on the device: one region per slot, every projection of every layer at the same
// offset in each (A [max_rank, in] and B [out, max_rank], bf16, zero beyond an adapter's rank),
// allocated once by reserve() so a recorded pass keeps the addresses; set() rewrites a slot in
// place from host memory. Factors already on the device (a training loop's) go through a staging
// region of the slot: stage() packs and checks them there, on a stream of its own, while passes
// may run; commit() copies the region over the slot's on the compute stream, between passes.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <map>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "backend/cuda/kernels/fp8_gemv.h"
#include "backend/cuda/kernels/lora.h"
#include "backend/cuda/runtime/device_buffer.h"
#include "backend/cuda/runtime/event.h"
#include "backend/cuda/runtime/stream.h"
#include "formats/hf_config.h"
#include "model/backend.h"
#include "model/lora_weights.h"

namespace fp8llm::cuda {

// Passes of up to this many tokens add their adapters inside the tensor-core GEMV's launch
// (in_gemv). H100, 8B shape, rank 16, four adapters, 128 in / 512 out: 4 tokens 558 -> 816
// output tok/s, 8 tokens 1,065 -> 1,537; at 16 tokens (the GEMV's second tile of eight, and 32
// more shrink blocks a group) 2,253 -> 2,121, so those keep the shrink and expand kernels.
inline constexpr int64_t kLoraInGemvMaxRows = 8;

class CudaLora {
 public:
  void reserve(const ModelConfig& config, int slots, int64_t max_rank, int64_t max_tokens);
  void set(int slot, const LoraAdapter* adapter, cudaStream_t stream);
  void stage(int slot, int64_t rank, std::span<const LoraDeviceFactor> factors);
  void commit(int slot, cudaStream_t stream);
  // Each token's adapter contribution to projections `kinds` of `layer`, which all read x, in
  // two halves (kernels/lora.h): shrink reads x, expand then adds to ys (a token's row of output
  // g `ld` floats after the one before, where ld is given and not 0; else outs[g]). One group at
  // a time.
  void shrink(const float* x, int64_t in, int64_t layer, std::span<const LinearKind> kinds,
              const BatchView& batch, cudaStream_t stream) const;
  void expand(int64_t in, int64_t layer, std::span<const LinearKind> kinds, const BatchView& batch,
              std::span<float* const> ys, std::span<const int64_t> outs, cudaStream_t stream,
              int64_t ld = 0) const;
  // Both halves for the tensor-core GEMV to add in its own launch (kernels/fp8_gemv.h), or nothing
  // where it cannot or should not: a rank above kFp8GemvLoraMaxRank, more than kLoraInGemvMaxRows
  // tokens.
  std::optional<Fp8GemvLora> in_gemv(const float* x, int64_t in, int64_t layer,
                                     std::span<const LinearKind> kinds, const BatchView& batch,
                                     std::span<const int64_t> outs) const;

 private:
  struct Offsets {
    size_t a = 0, b = 0;  // elements from the slot's start
    ProjectionShape shape;
  };
  __nv_bfloat16* slot_base(int slot) const;
  LoraLaunch launch_of(const float* x, int64_t in, int64_t layer, std::span<const LinearKind> kinds,
                       const BatchView& batch) const;

  int slots_ = 0;
  int64_t max_rank_ = 0;
  size_t slot_elements_ = 0;
  std::map<std::pair<int64_t, LinearKind>, Offsets> offsets_;
  DeviceBuffer factors_;              // bf16, slots_ * slot_elements_
  DeviceBuffer scales_;               // float per slot
  DeviceBuffer scratch_;              // float, the shrink's partial sums and u (kernels/lora.h)
  DeviceBuffer tile_counts_;          // int32, zero between launches (kernels/lora.h)
  DeviceBuffer gemv_u_, gemv_done_;   // in_gemv's scratch and counters (kernels/fp8_gemv.h)
  std::vector<DeviceBuffer> staged_;  // per slot, allocated by its first stage()
  std::vector<bool> staged_ready_;
  Stream stage_stream_;
  Event committed_;  // after the last commit's copy: stage() waits before overwriting
  DeviceBuffer pack_items_, first_bad_;
};

}  // namespace fp8llm::cuda
