// Live weights (part of the public API): new values for the loaded weights, handed to
// Engine::update_weights by a training loop that uses the engine for its rollouts.
//
//   std::vector<fp8llm::WeightTensor> ts = {{.name = "model.layers.0.mlp.up_proj.weight",
//                                            .dtype = "BF16", .shape = {640, 256}, .data = p}};
//   engine->update_weights(ts);
//
// Names are the Hugging Face ones of the state dict, plus the fused projections trainers and
// other engines hold: `<layer>.self_attn.qkv_proj.weight` (q, k and v stacked by rows, split by
// the config's head counts) and `<layer>.mlp.gate_up_proj.weight` (gate then up), and their
// `.bias` where the model has biases. On a model with tied embeddings `lm_head.weight` names the
// embedding table, as in a PyTorch state_dict where both names hold one tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fp8llm/modes.h"

namespace fp8llm {

struct WeightTensor {
  std::string name;
  std::string dtype;           // "BF16", "F16" or "F32" (safetensors spelling)
  std::vector<int64_t> shape;  // the checkpoint tensor's shape (a fused one: its parts stacked)
  const void* data = nullptr;  // row-major and contiguous
  // Where `data` is: host memory, or the memory of the CUDA device the engine runs on (only an
  // engine on that device reads it there).
  Device device = Device::Cpu;
};

struct WeightUpdateReport {
  uint64_t tensors = 0;      // checkpoint tensors written (a fused tensor counts as its parts)
  uint64_t quantized = 0;    // of which FP8 projections, quantized again
  uint64_t bytes = 0;        // source bytes read
  double check_seconds = 0;  // checking names, shapes, dtypes and values before any write
  double seconds = 0;        // all of it: from the call to the engine ready to generate
};

}  // namespace fp8llm
