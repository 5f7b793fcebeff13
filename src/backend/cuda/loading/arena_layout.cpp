#include "backend/cuda/loading/arena_layout.h"

#include <array>
#include <map>
#include <optional>
#include <utility>

#include "backend/cuda/kernels/fp8_quant.h"

namespace fp8llm::cuda {
namespace {

constexpr uint64_t kAlign = 256;
// Inside a group a part only needs the alignment of the kernels' vector loads.
constexpr uint64_t kGroupAlign = 16;

constexpr std::array<WeightRole, 3> kAttentionInputs = {WeightRole::QProj, WeightRole::KProj,
                                                        WeightRole::VProj};

bool is_attention_input(const PlannedTensor& t) {
  if (t.spec.layer < 0) return false;
  for (const WeightRole r : kAttentionInputs) {
    if (t.spec.role == r) return true;
  }
  return false;
}

}  // namespace

TensorFootprint footprint_of(const PlannedTensor& t) {
  TensorFootprint f;
  const Shape& s = t.spec.shape;
  f.rows = s.size() == 2 ? s[0] : 1;
  f.cols = s.empty() ? 1 : s.back();
  const auto numel = static_cast<uint64_t>(f.rows * f.cols);
  if (t.is_weight_scale) {
    // [N, 1] row scales, or [ceil(N/128), ceil(K/128)] block scales with the row padded.
    f.scale_ld = *t.prequantized == Fp8Scheme::Block ? (f.cols + 3) / 4 * 4 : f.cols;
    f.data = static_cast<uint64_t>(f.rows * f.scale_ld) * 4;
  } else if (t.prequantized) {
    f.data = numel;  // the checkpoint's e4m3 codes
  } else if (t.quantize) {
    f.data = numel;
    f.scale_ld = *t.quantize == Fp8Scheme::Block ? device_block_scale_ld(f.cols) : 0;
    f.scales =
        static_cast<uint64_t>(weight_scale_elems(*t.quantize, f.rows, f.cols, f.scale_ld)) * 4;
  } else {
    f.data = numel * 2;  // bf16 on the device whatever the checkpoint dtype
  }
  return f;
}

ArenaLayout layout_arena(const LoadPlan& plan) {
  const size_t n = plan.tensors.size();
  ArenaLayout layout;
  layout.tensors.resize(n);
  // A layer's q, k and v weights, and the scale tensors of a pre-quantized checkpoint's.
  std::map<std::pair<int64_t, WeightRole>, size_t> weight_of, scale_of;
  for (size_t i = 0; i < n; ++i) {
    const PlannedTensor& t = plan.tensors[i];
    if (!is_attention_input(t)) continue;
    (t.is_weight_scale ? scale_of : weight_of)[{t.spec.layer, t.spec.role}] = i;
  }
  uint64_t at = 0;
  const auto take = [&at](uint64_t bytes, uint64_t align) {
    at = (at + align - 1) / align * align;
    const uint64_t offset = at;
    at += bytes;
    return offset;
  };
  std::vector<bool> placed(n, false);
  for (size_t i = 0; i < n; ++i) {
    if (placed[i]) continue;
    const PlannedTensor& t = plan.tensors[i];
    if (!is_attention_input(t)) {
      const TensorFootprint f = footprint_of(t);
      layout.tensors[i].data = take(f.data, kAlign);
      if (f.scales > 0) layout.tensors[i].scales = take(f.scales, kAlign);
      placed[i] = true;
      continue;
    }
    // The first of the layer's group in the plan places the whole group: codes, then scales.
    const int64_t l = t.spec.layer;
    const auto find = [l](const auto& index, WeightRole r) -> std::optional<size_t> {
      const auto it = index.find({l, r});
      return it == index.end() ? std::nullopt : std::optional<size_t>(it->second);
    };
    at = (at + kAlign - 1) / kAlign * kAlign;
    for (const WeightRole r : kAttentionInputs) {
      if (const auto w = find(weight_of, r)) {
        layout.tensors[*w].data = take(footprint_of(plan.tensors[*w]).data, kGroupAlign);
        placed[*w] = true;
      }
    }
    at = (at + kAlign - 1) / kAlign * kAlign;
    for (const WeightRole r : kAttentionInputs) {
      if (const auto w = find(weight_of, r)) {
        const TensorFootprint f = footprint_of(plan.tensors[*w]);
        if (f.scales > 0) layout.tensors[*w].scales = take(f.scales, kGroupAlign);
      }
      if (const auto s = find(scale_of, r)) {
        layout.tensors[*s].data = take(footprint_of(plan.tensors[*s]).data, kGroupAlign);
        placed[*s] = true;
      }
    }
    // A scale tensor whose weight is not in the plan is refused later (DeviceWeights); it still
    // gets its own room here.
    if (!placed[i]) layout.tensors[i].data = take(footprint_of(t).data, kAlign);
    placed[i] = true;
  }
  layout.bytes = (at + kAlign - 1) / kAlign * kAlign;
  return layout;
}

}  // namespace fp8llm::cuda
