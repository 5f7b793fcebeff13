// A LoRA adapter cut for one rank of a tensor-parallel model (model/shard_plan.h). A projection's
// adapter adds scale · (x · Aᵀ) · Bᵀ, linear in both factors, so it splits as the weight does:
// where the rank holds a range of output rows (q, k, v, gate, up), it keeps those rows of B and
// all of A; where it holds a range of input columns (o, down), it keeps those columns of A and
// all of B, and its share of the delta joins the partial sum that the ranks add up.
#pragma once

#include "model/lora_weights.h"
#include "model/shard_plan.h"

namespace fp8llm {

LoraAdapter shard_lora(const LoraAdapter& whole, const ShardPlan& plan, int rank);

}  // namespace fp8llm
