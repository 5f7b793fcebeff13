#include "backend/cpu/cpu_sharded_weight_store.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "model/layer_members.h"
#include "quant/region_quantizer.h"

namespace fp8llm {
namespace {

const HostTensor& held(const HostWeights& w, const WeightSpec& spec, int rank) {
  const HostTensor* t = host_slot(w, spec);
  FP8LLM_CHECK(t != nullptr && !t->bytes.empty(), "{}: rank {} holds no such tensor", spec.name,
               rank);
  return *t;
}

const HostLinear* projection(const HostWeights& w, const WeightSpec& spec) {
  return is_bias_role(spec.role) ? nullptr : host_linear(w, spec);
}

// Copies `part` ([slice.rows(), slice.cols()] elements of `es` bytes) into its place in `whole`
// (`cols` columns) after checking that it agrees with what the earlier ranks' parts `before` put
// where they overlap it.
void place(const std::byte* part, const TensorSlice& slice, int64_t cols, size_t es,
           std::byte* whole, const std::vector<TensorSlice>& before, const std::string& name,
           int rank) {
  for (int64_t r = slice.row_begin; r < slice.row_end; ++r) {
    const std::byte* src = part + static_cast<size_t>((r - slice.row_begin) * slice.cols()) * es;
    std::byte* dst = whole + static_cast<size_t>(r * cols + slice.col_begin) * es;
    for (const TensorSlice& b : before) {
      const int64_t c0 = std::max(b.col_begin, slice.col_begin);
      const int64_t c1 = std::min(b.col_end, slice.col_end);
      if (r < b.row_begin || r >= b.row_end || c0 >= c1) continue;
      const auto offset = static_cast<size_t>(c0 - slice.col_begin) * es;
      FP8LLM_CHECK(std::memcmp(dst + offset, src + offset, static_cast<size_t>(c1 - c0) * es) == 0,
                   "{}: rank {} disagrees with an earlier rank in row {}, columns [{}, {})", name,
                   rank, r, c0, c1);
    }
    std::memcpy(dst, src, static_cast<size_t>(slice.cols()) * es);
  }
}

}  // namespace

CpuShardedWeightStore::CpuShardedWeightStore(ShardPlan plan, std::vector<CpuBackend*> ranks)
    : plan_(std::move(plan)), ranks_(std::move(ranks)) {
  FP8LLM_CHECK(static_cast<int>(ranks_.size()) == plan_.ranks(), "{} ranks of weights for {}",
               ranks_.size(), plan_.ranks());
}

HeldWeight CpuShardedWeightStore::held_weight(const WeightSpec& spec) const {
  const HostWeights& w = ranks_[0]->weights();
  const HostTensor& t = held(w, spec, 0);
  const HostLinear* lin = projection(w, spec);
  if (lin != nullptr && lin->scheme) return {DType::F8_E4M3, lin->scheme};
  return {t.dtype, std::nullopt};
}

void CpuShardedWeightStore::read_weight(const WeightSpec& spec, std::span<std::byte> values,
                                        std::span<float> scales) const {
  const int64_t n = spec.shape.at(0), k = spec.shape.size() > 1 ? spec.shape[1] : 1;
  const HeldWeight how = held_weight(spec);
  if (!values.empty()) {
    const size_t es = dtype_size(how.dtype);
    FP8LLM_CHECK(values.size() == static_cast<size_t>(n * k) * es,
                 "{}: {} bytes asked for, the tensor has {}", spec.name, values.size(),
                 static_cast<size_t>(n * k) * es);
    std::vector<TensorSlice> before;
    for (int r = 0; r < plan_.ranks(); ++r) {
      const HostTensor& part = held(ranks_[static_cast<size_t>(r)]->weights(), spec, r);
      const TensorSlice slice = plan_.slice(spec.role, r);
      FP8LLM_CHECK(part.bytes.size() == static_cast<size_t>(slice.rows() * slice.cols()) * es,
                   "{}: rank {} holds {} bytes for a part of {} x {}", spec.name, r,
                   part.bytes.size(), slice.rows(), slice.cols());
      place(part.bytes.data(), slice, k, es, values.data(), before, spec.name, r);
      before.push_back(slice);
    }
  }
  if (!scales.empty()) {
    FP8LLM_CHECK(how.scheme, "{}: not an FP8 projection, it has no scales", spec.name);
    const Shape whole = weight_scale_shape(*how.scheme, n, k);
    FP8LLM_CHECK(static_cast<int64_t>(scales.size()) == num_elements(whole),
                 "{}: {} scales asked for, the weight has {}", spec.name, scales.size(),
                 num_elements(whole));
    std::vector<TensorSlice> before;
    for (int r = 0; r < plan_.ranks(); ++r) {
      const HostLinear* lin = projection(ranks_[static_cast<size_t>(r)]->weights(), spec);
      FP8LLM_CHECK(lin != nullptr && lin->scheme == how.scheme, "{}: rank {} holds no scales",
                   spec.name, r);
      const TensorSlice grid = region_scale_grid(*how.scheme, plan_.slice(spec.role, r));
      FP8LLM_CHECK(lin->scale.numel() == grid.rows() * grid.cols(),
                   "{}: rank {} holds {} scales for {} x {}", spec.name, r, lin->scale.numel(),
                   grid.rows(), grid.cols());
      place(lin->scale.bytes.data(), grid, whole[1], sizeof(float),
            reinterpret_cast<std::byte*>(scales.data()), before, spec.name + " scales", r);
      before.push_back(grid);
    }
  }
}

HeldMemory CpuShardedWeightStore::memory(const WeightSpec& spec) {
  fail(
      "{}: the weights are split over {} ranks (--tensor-parallel), so no one memory holds the "
      "tensor; read it with state_dict_tensor instead",
      spec.name, plan_.ranks());
}

void CpuShardedWeightStore::write(std::span<const WeightWrite> writes) {
  for (const WeightWrite& write : writes) {
    const WeightSpec& spec = *write.spec;
    FP8LLM_CHECK(!write.on_device, "{}: the CPU backend reads host memory only", spec.name);
    const size_t count = static_cast<size_t>(num_elements(spec.shape));
    const TensorView source{write.dtype, spec.shape, write.data, count * dtype_size(write.dtype)};
    const int64_t k = spec.shape.size() > 1 ? spec.shape[1] : 1;
    for (int r = 0; r < plan_.ranks(); ++r) {
      HostWeights& w = ranks_[static_cast<size_t>(r)]->weights();
      HostTensor* slot = host_slot(w, spec);
      FP8LLM_CHECK(slot != nullptr && !slot->bytes.empty(), "{}: rank {} holds no such tensor",
                   spec.name, r);
      const TensorSlice slice = plan_.slice(spec.role, r);
      HostLinear* lin = is_bias_role(spec.role) ? nullptr : host_linear(w, spec);
      if (lin != nullptr && lin->scheme) {
        quantize_weight_region(*lin->scheme, source, slice, slot->as<uint8_t>(),
                               lin->scale.as<float>(), spec.name);
        continue;
      }
      // The rectangle, row by row, through fp32 (which holds BF16, F16 and F32 exactly).
      std::vector<float> row(static_cast<size_t>(slice.cols()));
      const size_t in_size = dtype_size(write.dtype), out_size = dtype_size(slot->dtype);
      for (int64_t i = 0; i < slice.rows(); ++i) {
        to_f32(
            write.dtype,
            write.data + static_cast<size_t>((slice.row_begin + i) * k + slice.col_begin) * in_size,
            row.data(), row.size());
        from_f32(slot->dtype, row.data(),
                 slot->bytes.data() + static_cast<size_t>(i * slice.cols()) * out_size, row.size());
      }
    }
  }
  for (CpuBackend* rank : ranks_) rank->weights_changed();
}

}  // namespace fp8llm
