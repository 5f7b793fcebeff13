// How many KV blocks a load gets: LoadOptions::kv_memory_gib, or the device's default budget.
#pragma once

#include <cstdint>

#include "formats/hf_config.h"
#include "fp8llm/engine.h"
#include "model/kv_cache.h"

namespace fp8llm {

// The cache's shape without its block count (`options` settled: the element type is not Auto).
KvCacheSpec kv_cache_shape(const ModelConfig& config, const LoadOptions& options);
// Blocks for `budget_bytes` (block 0 included, which is never handed out); an Error when fewer
// than two fit.
int64_t kv_blocks_for(const KvCacheSpec& shape, uint64_t budget_bytes);
// The CPU's default budget: 16 contexts of `max_context`, at most 2 GiB.
uint64_t default_cpu_kv_bytes(const KvCacheSpec& shape, int64_t max_context);

}  // namespace fp8llm
