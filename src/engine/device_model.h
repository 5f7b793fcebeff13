// What a load puts on a device, whichever device it is: the backend computing over the weights,
// the weights by checkpoint name, activation memory, a token picker where the logits are (none on
// the CPU, which samples on the host), and the paged KV cache sized from what memory is left.
#pragma once

#include <functional>
#include <memory>

#include "engine/model_runner.h"
#include "model/backend.h"
#include "model/kv_cache.h"
#include "model/token_picker.h"
#include "model/weight_store.h"
#include "model/workspace.h"

namespace fp8llm {

struct DeviceModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<WeightStore> weights;
  std::unique_ptr<Workspace> workspace;
  std::unique_ptr<TokenPicker> picker;  // null: every draw on the host
  // The KV cache, made once the weights are in place (so that its budget is what is left).
  std::function<std::unique_ptr<KvStorage>(const KvCacheSpec&)> make_kv;
  uint64_t default_kv_bytes = 0;  // the device's budget when LoadOptions gives none
  std::unique_ptr<KvStorage> kv;
  RunnerOptions runner;
};

}  // namespace fp8llm
