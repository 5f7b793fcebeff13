// The tensors of Engine::update_weights (fp8llm/weight_update.h) as writes of checkpoint tensors,
// with everything that could make a write fail checked first: each name (fused q/k/v and gate/up
// split by rows into their parts, the tied lm_head as the embedding, rotary buffers skipped), no
// tensor written twice, the shape, the dtype, where the data is, and every value finite. An Error
// names the tensor as it was given.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "formats/hf_config.h"
#include "fp8llm/weight_update.h"
#include "model/weight_store.h"

namespace fp8llm {

struct WeightUpdatePlan {
  std::vector<WeightSpec> specs;    // expected_weights(config); the writes point into it
  std::vector<WeightWrite> writes;  // in the order given (a fused tensor's parts in row order)
  std::vector<std::string> given;   // per write: the name it came under
  uint64_t bytes = 0;               // source bytes of the writes
  uint64_t quantized = 0;           // writes to FP8 projections
};

// Checks and resolves `tensors` against the loaded model, values included: `store` says how each
// tensor is held and checks the sources in device memory (`device`: where the engine runs); the
// sources in host memory are checked here, on every core.
WeightUpdatePlan plan_weight_update(const ModelConfig& config, const WeightStore& store,
                                    Device device, std::span<const WeightTensor> tensors);

}  // namespace fp8llm
