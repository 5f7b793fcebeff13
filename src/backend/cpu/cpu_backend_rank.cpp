// The ops of a CpuBackend that holds one rank's shard of a tensor-parallel model
// (model/shard_plan.h): where its part of each projection sits, the row-parallel FP8 projections
// whose input scales span the ranks, and the collectives.
#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "model/layer_members.h"
#include "quant/region_quantizer.h"

namespace fp8llm {
namespace {

float* f32(Act a) {
  return static_cast<float*>(a.data);
}

}  // namespace

bool CpuBackend::partial_output(LinearKind kind) const {
  return rank_.plan && rank_.plan->ranks() > 1 &&
         (kind == LinearKind::O || kind == LinearKind::Down);
}

cpu::WeightShard CpuBackend::shard_of(LinearKind kind, int64_t in_features) const {
  const ShardPlan& plan = *rank_.plan;
  const ModelConfig& whole = plan.config();
  // o and down hold input columns: their full width is the whole model's.
  int64_t full_k = in_features;
  if (kind == LinearKind::O) full_k = whole.num_heads * whole.head_dim;
  if (kind == LinearKind::Down) full_k = whole.intermediate_size;
  const WeightRole role = weight_role_of(kind);
  const TensorSlice s = plan.slice(role, rank_.rank);
  return {.row = s.row_begin, .col = s.col_begin, .full_k = full_k};
}

Collective& CpuBackend::collective() const {
  FP8LLM_CHECK(rank_.collective != nullptr, "this backend holds the whole model: no collectives");
  return *rank_.collective;
}

void CpuBackend::all_reduce(Act x) {
  collective().all_reduce_sum(f32(x), x.rows * x.cols);
}

void CpuBackend::reduce_partial(Act partial, int64_t layer, LinearKind kind) {
  collective().all_reduce_sum(f32(partial), partial.rows * partial.cols);
  // The bias after the sum, as one rank adds it after its whole sum (gemm.h).
  const std::vector<float>& b = bias(layer, kind);
  if (b.empty()) return;
  FP8LLM_CHECK(static_cast<int64_t>(b.size()) == partial.cols,
               "reduce_partial: a bias of {} for {} columns", b.size(), partial.cols);
  for (int64_t r = 0; r < partial.rows; ++r) {
    float* row = f32(partial) + r * partial.cols;
    for (int64_t j = 0; j < partial.cols; ++j) row[j] += b[static_cast<size_t>(j)];
  }
}

void CpuBackend::all_gather(Act local, Act out) {
  Collective& c = collective();
  FP8LLM_CHECK(out.rows == local.rows && out.cols == local.cols * c.ranks(),
               "all_gather: [{}, {}] from {} ranks into [{}, {}]", local.rows, local.cols,
               c.ranks(), out.rows, out.cols);
  const int64_t n = local.rows * local.cols;
  std::vector<float> gathered(static_cast<size_t>(n * c.ranks()));
  c.all_gather(f32(local), n, gathered.data());
  // Rank by rank [rows, cols] blocks into rows of the ranks' columns side by side.
  for (int r = 0; r < c.ranks(); ++r) {
    for (int64_t row = 0; row < local.rows; ++row) {
      std::memcpy(f32(out) + row * out.cols + r * local.cols,
                  gathered.data() + r * n + row * local.cols,
                  sizeof(float) * static_cast<size_t>(local.cols));
    }
  }
}

void CpuBackend::linear_fp8_partial(Act in, Fp8Scheme scheme, const uint8_t* wq,
                                    const float* wscale, int64_t n, const cpu::WeightShard& shard,
                                    Act out) {
  // The input's scales are those of its whole rows, which span every rank: each rank's amaxes,
  // reduced by the largest, give every rank the scales one rank would compute.
  const int64_t k = in.cols;
  const auto groups =
      static_cast<size_t>(num_elements(activation_scale_shape(scheme, in.rows, shard.full_k)));
  std::vector<uint32_t> amax(groups);
  activation_amax_bits(scheme, f32(in), in.rows, k, shard.col, shard.full_k, amax.data());
  collective().all_reduce_max(amax.data(), static_cast<int64_t>(amax.size()));
  std::vector<uint8_t> xq(static_cast<size_t>(in.rows * k));
  std::vector<float> xscale(groups);
  quantize_activation_columns(scheme, f32(in), in.rows, k, shard.col, shard.full_k, amax.data(),
                              xq.data(), xscale.data());
  cpu::linear_fp8_quantized_shard(scheme, xq.data(), xscale.data(), in.rows, k, wq, wscale, n,
                                  shard, nullptr, f32(out));
}

}  // namespace fp8llm
