#include "backend/cuda/cuda_lora.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "backend/cuda/kernels/lora_pack.h"
#include "backend/cuda/runtime/cuda_check.h"
#include "core/error.h"
#include "model/layer_members.h"

namespace fp8llm::cuda {
namespace {

PackSource pack_source(DType t, const std::string& name) {
  switch (t) {
    case DType::BF16:
      return PackSource::BF16;
    case DType::F16:
      return PackSource::F16;
    case DType::F32:
      return PackSource::F32;
    default:
      fail("{}: dtype {} (expected BF16, F16 or F32)", name, dtype_name(t));
  }
}

}  // namespace

void CudaLora::reserve(const ModelConfig& config, int slots, int64_t max_rank, int64_t max_tokens) {
  FP8LLM_CHECK(slots > 0 && max_rank > 0, "lora: {} slots of rank {}", slots, max_rank);
  slots_ = slots;
  max_rank_ = max_rank;
  size_t at = 0;
  for (int64_t l = 0; l < config.num_layers; ++l) {
    for (LinearKind kind : kLayerLinearKinds) {
      Offsets o;
      o.shape = projection_shape(config, kind);
      // Each factor starts 16-byte aligned, for the kernels' vector loads.
      o.a = at;
      at = (at + static_cast<size_t>(max_rank * o.shape.in) + 7) / 8 * 8;
      o.b = at;
      at = (at + static_cast<size_t>(o.shape.out * max_rank) + 7) / 8 * 8;
      offsets_[{l, kind}] = o;
    }
  }
  slot_elements_ = (at + 127) / 128 * 128;
  factors_ = DeviceBuffer(static_cast<size_t>(slots) * slot_elements_ * sizeof(__nv_bfloat16));
  factors_.fill_zero();
  scales_ = DeviceBuffer(static_cast<size_t>(slots) * sizeof(float));
  scales_.fill_zero();
  // The model's groups: q, k, v of the hidden state; o of the attention; gate, up; down.
  const int64_t scratch = std::max(
      {lora_scratch_floats(max_tokens, config.hidden_size, 3, max_rank),
       lora_scratch_floats(max_tokens, projection_shape(config, LinearKind::O).in, 1, max_rank),
       lora_scratch_floats(max_tokens, config.intermediate_size, 1, max_rank)});
  scratch_ = DeviceBuffer(static_cast<size_t>(scratch) * sizeof(float));
  tile_counts_ = DeviceBuffer(static_cast<size_t>(lora_tile_counts(max_tokens)) * sizeof(int32_t));
  tile_counts_.fill_zero();
  // The tensor-core GEMV's share, for the decode batch sizes it takes.
  const int64_t gemv_tokens = std::min(max_tokens, kLoraInGemvMaxRows);
  const int64_t gemv_u =
      std::max({fp8_gemv_lora_scratch_floats(3, gemv_tokens, config.hidden_size, max_rank),
                fp8_gemv_lora_scratch_floats(1, gemv_tokens,
                                             projection_shape(config, LinearKind::O).in, max_rank),
                fp8_gemv_lora_scratch_floats(
                    1, gemv_tokens, projection_shape(config, LinearKind::Down).in, max_rank)});
  gemv_u_ = DeviceBuffer(static_cast<size_t>(gemv_u) * sizeof(float));
  gemv_done_ = DeviceBuffer(2 * sizeof(int32_t));
  gemv_done_.fill_zero();
  staged_.clear();
  staged_.resize(static_cast<size_t>(slots));
  staged_ready_.assign(static_cast<size_t>(slots), false);
  first_bad_ = DeviceBuffer(sizeof(int32_t));
}

__nv_bfloat16* CudaLora::slot_base(int slot) const {
  return factors_.as<__nv_bfloat16>() + static_cast<size_t>(slot) * slot_elements_;
}

void CudaLora::set(int slot, const LoraAdapter* adapter, cudaStream_t stream) {
  FP8LLM_CHECK(slot >= 0 && slot < slots_, "lora: slot {} of {}", slot, slots_);
  FP8LLM_CHECK(adapter == nullptr || adapter->rank <= max_rank_,
               "lora: rank {} exceeds the engine's --max-lora-rank {}",
               adapter == nullptr ? 0 : adapter->rank, max_rank_);
  __nv_bfloat16* base = slot_base(slot);
  CUDA_CHECK(cudaMemsetAsync(base, 0, slot_elements_ * sizeof(__nv_bfloat16), stream));
  const float scale = adapter == nullptr ? 0.0f : adapter->scale;
  CUDA_CHECK(cudaMemcpyAsync(scales_.as<float>() + slot, &scale, sizeof(float),
                             cudaMemcpyHostToDevice, stream));
  if (adapter != nullptr) {
    for (const LoraModule& m : adapter->modules) {
      const Offsets& o = offsets_.at({m.layer, m.kind});
      const auto r = static_cast<size_t>(adapter->rank);
      // A's rows are whole; B's rows are padded from rank to max_rank columns.
      CUDA_CHECK(cudaMemcpyAsync(base + o.a, m.a.data(), m.a.size() * sizeof(uint16_t),
                                 cudaMemcpyHostToDevice, stream));
      CUDA_CHECK(cudaMemcpy2DAsync(base + o.b, static_cast<size_t>(max_rank_) * sizeof(uint16_t),
                                   m.b.data(), r * sizeof(uint16_t), r * sizeof(uint16_t),
                                   static_cast<size_t>(o.shape.out), cudaMemcpyHostToDevice,
                                   stream));
    }
  }
  // The host vectors must outlive the copies.
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void CudaLora::stage(int slot, int64_t rank, std::span<const LoraDeviceFactor> factors) {
  FP8LLM_CHECK(slot >= 0 && slot < slots_, "lora: slot {} of {}", slot, slots_);
  FP8LLM_CHECK(rank >= 1 && rank <= max_rank_,
               "lora: rank {} exceeds the engine's --max-lora-rank {}", rank, max_rank_);
  const auto s = static_cast<size_t>(slot);
  const size_t bytes = slot_elements_ * sizeof(__nv_bfloat16);
  if (staged_[s].empty()) staged_[s] = DeviceBuffer(bytes);
  auto* base = staged_[s].as<__nv_bfloat16>();
  std::vector<LoraPackItem> items;
  items.reserve(factors.size());
  for (const LoraDeviceFactor& f : factors) {
    const Offsets& o = offsets_.at({f.layer, f.kind});
    LoraPackItem it;
    it.src = f.data;
    it.dtype = pack_source(f.dtype, f.name);
    if (f.is_b) {
      it.rows = o.shape.out, it.cols = rank, it.dst = base + o.b, it.dst_ld = max_rank_;
    } else {
      it.rows = rank, it.cols = o.shape.in, it.dst = base + o.a, it.dst_ld = o.shape.in;
    }
    items.push_back(it);
  }
  cudaStream_t st = stage_stream_.get();
  pack_items_.reserve_discard(items.size() * sizeof(LoraPackItem));
  CUDA_CHECK(cudaMemcpyAsync(pack_items_.data(), items.data(), items.size() * sizeof(LoraPackItem),
                             cudaMemcpyHostToDevice, st));
  // The values are checked before the staging copy is touched: it may hold a replacement not yet
  // committed, which a refused one must leave as it is.
  int32_t bad = INT32_MAX;
  CUDA_CHECK(cudaMemcpyAsync(first_bad_.data(), &bad, sizeof(bad), cudaMemcpyHostToDevice, st));
  launch_lora_pack(pack_items_.as<LoraPackItem>(), static_cast<int>(items.size()), false,
                   first_bad_.as<int32_t>(), st);
  CUDA_CHECK(cudaMemcpyAsync(&bad, first_bad_.data(), sizeof(bad), cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  FP8LLM_CHECK(bad == INT32_MAX, "{}: holds a value that is not finite (NaN or infinity)",
               factors[static_cast<size_t>(bad)].name);
  // The last commit may still be copying out of a staging region.
  CUDA_CHECK(cudaStreamWaitEvent(st, committed_.get()));
  // Modules the adapter does not have, and columns beyond its rank, stay zero.
  CUDA_CHECK(cudaMemsetAsync(base, 0, bytes, st));
  launch_lora_pack(pack_items_.as<LoraPackItem>(), static_cast<int>(items.size()), true,
                   first_bad_.as<int32_t>(), st);
  CUDA_CHECK(cudaStreamSynchronize(st));
  staged_ready_[s] = true;
}

void CudaLora::commit(int slot, cudaStream_t stream) {
  FP8LLM_CHECK(slot >= 0 && slot < slots_ && staged_ready_[static_cast<size_t>(slot)],
               "lora: slot {} has no staged factors", slot);
  CUDA_CHECK(cudaMemcpyAsync(slot_base(slot), staged_[static_cast<size_t>(slot)].data(),
                             slot_elements_ * sizeof(__nv_bfloat16), cudaMemcpyDeviceToDevice,
                             stream));
  committed_.record(stream);
  staged_ready_[static_cast<size_t>(slot)] = false;
}

LoraLaunch CudaLora::launch_of(const float* x, int64_t in, int64_t layer,
                               std::span<const LinearKind> kinds, const BatchView& batch) const {
  FP8LLM_CHECK(!kinds.empty() && kinds.size() <= static_cast<size_t>(kLoraMaxGroup),
               "lora: a group of {} projections", kinds.size());
  LoraLaunch l{.x = x,
               .tokens = batch.num_tokens,
               .in = in,
               .max_rank = max_rank_,
               .groups = static_cast<int>(kinds.size()),
               .slot_stride = static_cast<int64_t>(slot_elements_),
               .scales = scales_.as<float>(),
               .rows = batch.lora_rows,
               .row_slots = batch.lora_row_slots,
               .scratch = scratch_.as<float>(),
               .tile_counts = tile_counts_.as<int32_t>()};
  for (size_t g = 0; g < kinds.size(); ++g) {
    const Offsets& o = offsets_.at({layer, kinds[g]});
    FP8LLM_CHECK(o.shape.in == in, "lora: an input of {} for a {} x {} projection", in, o.shape.out,
                 o.shape.in);
    l.proj[g] = {.a = slot_base(0) + o.a, .b = slot_base(0) + o.b, .out = o.shape.out};
  }
  FP8LLM_CHECK(
      static_cast<size_t>(lora_scratch_floats(l.tokens, in, l.groups, max_rank_)) * sizeof(float) <=
              scratch_.size() &&
          static_cast<size_t>(lora_tile_counts(l.tokens)) * sizeof(int32_t) <= tile_counts_.size(),
      "lora: {} tokens exceed the reserved scratch", l.tokens);
  return l;
}

void CudaLora::shrink(const float* x, int64_t in, int64_t layer, std::span<const LinearKind> kinds,
                      const BatchView& batch, cudaStream_t stream) const {
  launch_lora_shrink(launch_of(x, in, layer, kinds, batch), stream);
}

void CudaLora::expand(int64_t in, int64_t layer, std::span<const LinearKind> kinds,
                      const BatchView& batch, std::span<float* const> ys,
                      std::span<const int64_t> outs, cudaStream_t stream, int64_t ld) const {
  LoraLaunch l = launch_of(nullptr, in, layer, kinds, batch);
  FP8LLM_CHECK(ys.size() == kinds.size() && outs.size() == kinds.size(),
               "lora: {} outputs for {} projections", ys.size(), kinds.size());
  for (size_t g = 0; g < kinds.size(); ++g) {
    FP8LLM_CHECK(outs[g] == l.proj[g].out, "lora: an output of {} for a projection of {}", outs[g],
                 l.proj[g].out);
    FP8LLM_CHECK(ld == 0 || ld >= outs[g], "lora: rows {} apart for outputs of {}", ld, outs[g]);
    l.proj[g].y = ys[g];
    l.proj[g].ld = ld;
  }
  launch_lora_expand(l, stream);
}

std::optional<Fp8GemvLora> CudaLora::in_gemv(const float* x, int64_t in, int64_t layer,
                                             std::span<const LinearKind> kinds,
                                             const BatchView& batch,
                                             std::span<const int64_t> outs) const {
  if (max_rank_ > kFp8GemvLoraMaxRank || kinds.empty() ||
      kinds.size() > static_cast<size_t>(kLoraMaxGroup) || batch.num_tokens < 1 ||
      batch.num_tokens > kLoraInGemvMaxRows ||
      static_cast<size_t>(fp8_gemv_lora_scratch_floats(static_cast<int>(kinds.size()),
                                                       batch.num_tokens, in, max_rank_)) *
              sizeof(float) >
          gemv_u_.size())
    return std::nullopt;
  Fp8GemvLora l{.x = x,
                .token_slot = batch.token_lora,
                .slot_scales = scales_.as<float>(),
                .slot_stride = static_cast<int64_t>(slot_elements_),
                .max_rank = max_rank_,
                .u = gemv_u_.as<float>(),
                .done = gemv_done_.as<int32_t>()};
  for (size_t g = 0; g < kinds.size(); ++g) {
    const Offsets& o = offsets_.at({layer, kinds[g]});
    FP8LLM_CHECK(o.shape.in == in && outs.size() == kinds.size() && outs[g] == o.shape.out,
                 "lora: [{}] -> [{}] for a {} x {} projection", in, g < outs.size() ? outs[g] : 0,
                 o.shape.out, o.shape.in);
    l.a[g] = slot_base(0) + o.a;
    l.b[g] = slot_base(0) + o.b;
  }
  return l;
}

}  // namespace fp8llm::cuda
