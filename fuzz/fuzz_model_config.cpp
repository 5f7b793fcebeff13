// Feeds arbitrary bytes to the readers of a model directory's JSON configs: config.json (through
// ModelConfig) and generation_config.json. They may only ever throw fp8llm::Error; anything else
// (a crash, a sanitizer report, another exception, a hang) is a bug. An accepted config.json must
// keep the promises the loader relies on before it compares shapes with a checkpoint.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "formats/generation_config.h"
#include "formats/hf_config.h"
#include "model/weights.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp8llm;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const ModelConfig c = parse_model_config_text(text, "config.json");
    constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;
    for (int64_t dim : {c.hidden_size, c.intermediate_size, c.num_layers, c.num_heads,
                        c.num_kv_heads, c.head_dim, c.vocab_size, c.max_position_embeddings}) {
      check(dim > 0 && dim <= kMaxDim);
    }
    check(c.num_heads % c.num_kv_heads == 0 && c.head_dim % 2 == 0);
    check(c.rope.theta > 0 && c.rms_norm_eps > 0);
    // What the plan checks against the checkpoint before building the list of tensors.
    check(expected_weight_count(c) > c.num_layers);
    for (int64_t id : c.eos_token_ids) check(id >= 0 && id <= kMaxDim);
  } catch (const Error&) {
  }
  try {
    const GenerationConfig g = parse_generation_config(text, "generation_config.json");
    if (g.eos_token_ids) {
      for (int32_t id : *g.eos_token_ids) check(id >= 0);
    }
  } catch (const Error&) {
  }
  return 0;
}
