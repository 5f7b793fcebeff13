#include "model/host_weights.h"

namespace fp8llm {
namespace {
uint64_t linear_bytes(const HostLinear& l) {
  return l.weight.bytes.size() + l.scale.bytes.size() + l.bias.bytes.size();
}
}  // namespace

uint64_t HostWeights::resident_bytes() const {
  uint64_t total = embed.bytes.size() + final_norm.bytes.size() + linear_bytes(lm_head);
  for (const auto& l : layers) {
    total += l.input_norm.bytes.size() + l.post_attention_norm.bytes.size() +
             l.q_norm.bytes.size() + l.k_norm.bytes.size();
    for (const HostLinear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
      total += linear_bytes(*lin);
  }
  return total;
}

}  // namespace fp8llm
