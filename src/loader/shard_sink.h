// A sink that assembles every rank's HostWeights of a tensor-parallel model (model/shard_plan.h)
// in one pass over the checkpoint: each tensor streams in once and every rank takes its
// rectangle of it. A projection to quantize is quantized rank by rank over the rank's rectangle
// only, with the scales of the whole rows or tiles the rectangle cuts
// (quant/region_quantizer.h), so every shard equals that part of a one-rank load bit for bit;
// pre-quantized projections and their scales are cut the same way. On the CPU the ranks are
// threads of one process, so one read of each tensor serves them all.
#pragma once

#include <vector>

#include "loader/weight_stream.h"
#include "model/host_weights.h"
#include "model/shard_plan.h"

namespace fp8llm {

class ShardSink : public WeightSink {
 public:
  ShardSink(const LoadPlan& plan, ShardPlan shards);
  void consume(const PlannedTensor& tensor, const TensorView& source) override;

  // Every rank's weights, rank 0 first (call once streaming has finished).
  std::vector<HostWeights> take() { return std::move(ranks_); }

 private:
  ShardPlan shards_;
  std::vector<HostWeights> ranks_;
};

// The rectangle `slice` of `source` (2-D, or 1-D with one column) as a tensor of its own.
HostTensor slice_tensor(const TensorView& source, const TensorSlice& slice);
// The scales of a projection's rectangle `slice` out of the full weight's F32 scales `scales`
// (weight_scale_shape): the rows it holds (row scheme) or the tiles it touches (block scheme),
// shaped as region_scale_shape.
HostTensor slice_weight_scales(Fp8Scheme scheme, const HostTensor& scales,
                               const TensorSlice& slice);

// Plans, streams and assembles every rank's weights in one call; logs nothing.
std::vector<HostWeights> load_sharded_host_weights(const LoadPlan& plan, const ShardPlan& shards,
                                                   const StreamProgress& progress = {},
                                                   StreamStats* stats = nullptr);

}  // namespace fp8llm
