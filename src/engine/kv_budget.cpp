#include "engine/kv_budget.h"

#include <algorithm>

#include "core/error.h"

namespace fp8llm {

KvCacheSpec kv_cache_shape(const ModelConfig& config, const LoadOptions& options) {
  KvCacheSpec s;
  s.layers = config.num_layers;
  s.block_size = options.block_size;
  s.kv_heads = config.num_kv_heads;
  s.head_dim = config.head_dim;
  s.dtype = options.kv_cache_dtype;  // settled by Engine::load
  FP8LLM_CHECK(options.block_size >= 1 && options.block_size <= 1024,
               "--block-size {} must be in [1, 1024]", options.block_size);
  return s;
}

int64_t kv_blocks_for(const KvCacheSpec& shape, uint64_t budget_bytes) {
  const uint64_t block = shape.block_bytes();
  const auto blocks = static_cast<int64_t>(budget_bytes / std::max<uint64_t>(block, 1));
  FP8LLM_CHECK(blocks >= 2,
               "--kv-memory: {:.3f} GiB holds {} KV blocks of {} tokens ({} bytes each); at least "
               "2 are needed",
               static_cast<double>(budget_bytes) / (1ull << 30), blocks, shape.block_size, block);
  return blocks;
}

uint64_t default_cpu_kv_bytes(const KvCacheSpec& shape, int64_t max_context) {
  const uint64_t per_context =
      static_cast<uint64_t>((max_context + shape.block_size - 1) / shape.block_size + 1) *
      shape.block_bytes();
  return std::min<uint64_t>(16 * per_context, 2ull << 30);
}

}  // namespace fp8llm
