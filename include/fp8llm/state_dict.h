// The state dict of a loaded Engine: its live weights under their Hugging Face names, listed
// first and then read one tensor at a time, so that no more than the tensor asked for is copied.
//
//   for (const auto& e : engine->state_dict()) std::cout << e.name << " " << e.dtype << "\n";
//   auto q = engine->state_dict_tensor("model.layers.0.self_attn.q_proj.weight");
//
// Two forms:
//   Stored:      as the engine holds them. An FP8 projection is its F8_E4M3 codes [N, K] plus an
//                F32 scale tensor in the layout `fp8llm quantize` writes: block ->
//                `<weight>_scale_inv` [ceil(N/128), ceil(K/128)] (fine-grained fp8); row ->
//                `<weight>_scale` [N, 1] (compressed-tensors, per channel). Every other tensor is
//                in the dtype the backend holds it in (the CPU backend: the checkpoint's; the CUDA
//                backend: BF16).
//   Dequantized: the FP8 projections as BF16, deq = bf16_rne(float32(code) * scale), and no
//                scale tensors; every other tensor as in Stored.
// A tied lm_head is not listed (as in Hugging Face checkpoints with tie_word_embeddings).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fp8llm/modes.h"

namespace fp8llm {

enum class StateDictForm { Stored, Dequantized };

struct StateDictEntry {
  std::string name;            // Hugging Face name, e.g. "model.layers.0.mlp.up_proj.weight"
  std::string dtype;           // safetensors spelling: "F8_E4M3", "F32", "BF16", "F16"
  std::vector<int64_t> shape;  // row-major
  uint64_t nbytes = 0;
};

// Where one tensor of the stored state dict lives, without a copy (Engine::state_dict_views): the
// backend's own memory, read and written in place. `strides` are in elements; they are row-major
// except for block scales on CUDA, whose rows the device pads to a multiple of 4.
struct StateDictView {
  StateDictEntry entry;
  void* data = nullptr;
  std::vector<int64_t> strides;
  Device device = Device::Cpu;
};

struct StateDictTensor {
  StateDictEntry entry;
  std::vector<std::byte> bytes;  // entry.nbytes, little-endian, row-major
};

}  // namespace fp8llm
