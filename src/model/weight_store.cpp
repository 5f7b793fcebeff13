#include "model/weight_store.h"

#include "core/error.h"

namespace fp8llm {

void WeightStore::check_device_sources(std::span<const WeightWrite> writes) const {
  for (const WeightWrite& w : writes) {
    FP8LLM_CHECK(!w.on_device, "{}: in device memory, which this backend does not read",
                 w.spec->name);
  }
}

}  // namespace fp8llm
