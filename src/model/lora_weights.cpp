#include "model/lora_weights.h"

#include "core/error.h"

namespace fp8llm {

ProjectionShape projection_shape(const ModelConfig& c, LinearKind kind) {
  const int64_t q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  switch (kind) {
    case LinearKind::Q:
      return {c.hidden_size, q};
    case LinearKind::K:
    case LinearKind::V:
      return {c.hidden_size, kv};
    case LinearKind::O:
      return {q, c.hidden_size};
    case LinearKind::Gate:
    case LinearKind::Up:
      return {c.hidden_size, c.intermediate_size};
    case LinearKind::Down:
      return {c.intermediate_size, c.hidden_size};
    case LinearKind::LmHead:
      break;
  }
  fail("projection_shape: lm_head takes no adapter");
}

}  // namespace fp8llm
