#include "backend/cuda/loading/device_weights.h"

#include "backend/cuda/loading/arena_layout.h"
#include "core/error.h"

namespace fp8llm::cuda {
namespace {

const __nv_bfloat16* bf16(const DeviceTensorSlot& s) {
  return static_cast<const __nv_bfloat16*>(s.data);
}

DeviceLinear linear_from(const DeviceTensorSlot& s, const std::optional<Fp8Scheme>& scheme) {
  DeviceLinear lin;
  lin.n = s.rows;
  lin.k = s.cols;
  if (scheme) {
    lin.fp8.scheme = *scheme;
    lin.fp8.q = static_cast<const uint8_t*>(s.data);
    lin.fp8.scales = s.scales;
    lin.fp8.scale_ld = s.scale_ld;
    lin.fp8.n = s.rows;
    lin.fp8.k = s.cols;
  } else {
    lin.w = bf16(s);
  }
  return lin;
}

void set_bias(DeviceLinear& lin, const __nv_bfloat16* bias) {
  lin.bias = bias;
  lin.fp8.bias = bias;
}

}  // namespace

uint64_t DeviceWeights::arena_bytes_for(const LoadPlan& plan) {
  return layout_arena(plan).bytes;
}

DeviceWeights::DeviceWeights(const LoadPlan& plan) : DeviceWeights(plan, layout_arena(plan)) {}

DeviceWeights::DeviceWeights(const LoadPlan& plan, const ArenaLayout& layout)
    : arena_(layout.bytes),
      arena_bytes_(arena_.size()),
      layers_(static_cast<size_t>(plan.config.num_layers)),
      vocab_(plan.config.vocab_size),
      hidden_(plan.config.hidden_size) {
  arena_.fill_zero();  // block-scale padding is never written; keep it defined
  auto* base = arena_.as<std::byte>();
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const PlannedTensor& t = plan.tensors[i];
    const TensorFootprint f = footprint_of(t);
    DeviceTensorSlot s;
    s.data = base + layout.tensors[i].data;
    if (f.scales > 0) s.scales = reinterpret_cast<float*>(base + layout.tensors[i].scales);
    s.scale_ld = f.scale_ld;
    s.rows = f.rows;
    s.cols = f.cols;
    s.is_scale = t.is_weight_scale;
    index_.emplace(t.spec.name, slots_.size());
    slots_.push_back(s);

    if (t.is_weight_scale) continue;  // attached to its projection below
    const int64_t l = t.spec.layer;
    DeviceLayer* layer = l >= 0 ? &layers_.at(static_cast<size_t>(l)) : nullptr;
    const std::optional<Fp8Scheme> fp8 = t.prequantized ? t.prequantized : t.quantize;
    switch (t.spec.role) {
      case WeightRole::Embedding:
        embed_ = bf16(s);
        break;
      case WeightRole::LmHead:
        lm_head_ = linear_from(s, std::nullopt);
        break;
      case WeightRole::FinalNorm:
        final_norm_ = bf16(s);
        break;
      case WeightRole::InputNorm:
        layer->input_norm = bf16(s);
        break;
      case WeightRole::PostAttnNorm:
        layer->post_attention_norm = bf16(s);
        break;
      case WeightRole::QNorm:
        layer->q_norm = bf16(s);
        break;
      case WeightRole::KNorm:
        layer->k_norm = bf16(s);
        break;
      case WeightRole::QProj:
        layer->q = linear_from(s, fp8);
        break;
      case WeightRole::KProj:
        layer->k = linear_from(s, fp8);
        break;
      case WeightRole::VProj:
        layer->v = linear_from(s, fp8);
        break;
      case WeightRole::OProj:
        layer->o = linear_from(s, fp8);
        break;
      case WeightRole::GateProj:
        layer->gate = linear_from(s, fp8);
        break;
      case WeightRole::UpProj:
        layer->up = linear_from(s, fp8);
        break;
      case WeightRole::DownProj:
        layer->down = linear_from(s, fp8);
        break;
      case WeightRole::QBias:
        break;  // biases are attached below, once every weight has a slot
      case WeightRole::KBias:
        break;
      case WeightRole::VBias:
        break;
      case WeightRole::OBias:
        break;
      case WeightRole::GateBias:
        break;
      case WeightRole::UpBias:
        break;
      case WeightRole::DownBias:
        break;
    }
  }
  for (const PlannedTensor& t : plan.tensors) {
    if (t.spec.layer < 0) continue;
    DeviceLayer& layer = layers_.at(static_cast<size_t>(t.spec.layer));
    const DeviceTensorSlot& s = slots_[index_.at(t.spec.name)];
    if (t.is_weight_scale) {
      DeviceLinear* lin = nullptr;
      switch (t.spec.role) {
        case WeightRole::QProj:
          lin = &layer.q;
          break;
        case WeightRole::KProj:
          lin = &layer.k;
          break;
        case WeightRole::VProj:
          lin = &layer.v;
          break;
        case WeightRole::OProj:
          lin = &layer.o;
          break;
        case WeightRole::GateProj:
          lin = &layer.gate;
          break;
        case WeightRole::UpProj:
          lin = &layer.up;
          break;
        case WeightRole::DownProj:
          lin = &layer.down;
          break;
        default:
          fail("{}: a weight scale of a tensor that is not a projection", t.spec.name);
      }
      lin->fp8.scales = static_cast<const float*>(s.data);
      lin->fp8.scale_ld = s.scale_ld;
      continue;
    }
    const __nv_bfloat16* b = bf16(s);
    switch (t.spec.role) {
      case WeightRole::QBias:
        set_bias(layer.q, b);
        break;
      case WeightRole::KBias:
        set_bias(layer.k, b);
        break;
      case WeightRole::VBias:
        set_bias(layer.v, b);
        break;
      case WeightRole::OBias:
        set_bias(layer.o, b);
        break;
      case WeightRole::GateBias:
        set_bias(layer.gate, b);
        break;
      case WeightRole::UpBias:
        set_bias(layer.up, b);
        break;
      case WeightRole::DownBias:
        set_bias(layer.down, b);
        break;
      default:
        break;
    }
  }
  for (const DeviceLayer& l : layers_) {
    for (const DeviceLinear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      FP8LLM_CHECK(!lin->is_fp8() || lin->fp8.scales != nullptr,
                   "load plan: an FP8 projection of layer {} has no scales", &l - layers_.data());
    }
  }
  FP8LLM_CHECK(embed_ != nullptr && final_norm_ != nullptr,
               "load plan: no embedding table or final norm");
  if (lm_head_.w == nullptr) {  // tied: the embedding table is the output projection
    lm_head_.w = embed_;
    lm_head_.n = vocab_;
    lm_head_.k = hidden_;
  }
}

const DeviceTensorSlot* DeviceWeights::slot(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &slots_[it->second];
}

void DeviceWeights::move_to_host() {
  if (on_host()) return;
  host_copy_ = PinnedBuffer(arena_bytes_);
  arena_.download(host_copy_.data(), arena_bytes_);
  host_base_ = arena_.as<std::byte>();
  arena_ = DeviceBuffer();
}

void DeviceWeights::move_to_device() {
  if (!on_host()) return;
  DeviceBuffer arena(arena_bytes_);
  arena.upload(host_copy_.data(), arena_bytes_);
  arena_ = std::move(arena);
  host_copy_ = PinnedBuffer();
  rebase(host_base_, arena_.as<std::byte>());
}

void DeviceWeights::rebase(const std::byte* from, const std::byte* to) {
  const auto moved = [from, to](auto*& p) {
    if (p == nullptr) return;
    const auto offset = reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(from);
    p = reinterpret_cast<std::remove_reference_t<decltype(p)>>(reinterpret_cast<uintptr_t>(to) +
                                                               offset);
  };
  const auto moved_linear = [&moved](DeviceLinear& l) {
    moved(l.fp8.q);
    moved(l.fp8.scales);
    moved(l.fp8.bias);
    moved(l.w);
    moved(l.bias);
  };
  for (DeviceTensorSlot& s : slots_) {
    moved(s.data);
    moved(s.scales);
  }
  for (DeviceLayer& l : layers_) {
    for (DeviceLinear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) moved_linear(*lin);
    moved(l.input_norm);
    moved(l.post_attention_norm);
    moved(l.q_norm);
    moved(l.k_norm);
  }
  moved(embed_);
  moved(final_norm_);
  moved_linear(lm_head_);
}

}  // namespace fp8llm::cuda
