#include "model/lora_shard.h"

#include "core/error.h"
#include "model/layer_members.h"

namespace fp8llm {

LoraAdapter shard_lora(const LoraAdapter& whole, const ShardPlan& plan, int rank) {
  LoraAdapter part{.rank = whole.rank, .scale = whole.scale, .modules = {}};
  const int64_t r = whole.rank;
  for (const LoraModule& m : whole.modules) {
    const ProjectionShape shape = projection_shape(plan.config(), m.kind);
    FP8LLM_CHECK(static_cast<int64_t>(m.a.size()) == r * shape.in &&
                     static_cast<int64_t>(m.b.size()) == shape.out * r,
                 "shard_lora: layer {} factors do not match the model", m.layer);
    const TensorSlice s = plan.slice(weight_role_of(m.kind), rank);  // of the weight [out, in]
    LoraModule cut{.layer = m.layer, .kind = m.kind, .a = {}, .b = {}};
    cut.a.reserve(static_cast<size_t>(r * s.cols()));
    for (int64_t i = 0; i < r; ++i)
      cut.a.insert(cut.a.end(), m.a.begin() + i * shape.in + s.col_begin,
                   m.a.begin() + i * shape.in + s.col_end);
    cut.b.assign(m.b.begin() + s.row_begin * r, m.b.begin() + s.row_end * r);
    part.modules.push_back(std::move(cut));
  }
  return part;
}

}  // namespace fp8llm
