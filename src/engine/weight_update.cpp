#include "engine/weight_update.h"

#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "core/error.h"
#include "core/thread_pool.h"

namespace fp8llm {
namespace {

// A fused projection and its parts, stacked by rows in this order.
struct Fused {
  std::string_view suffix;
  std::array<std::string_view, 3> parts;
  size_t count;
};
constexpr std::array<Fused, 4> kFused = {{
    {"self_attn.qkv_proj.weight",
     {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"},
     3},
    {"self_attn.qkv_proj.bias",
     {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"},
     3},
    {"mlp.gate_up_proj.weight", {"mlp.gate_proj.weight", "mlp.up_proj.weight", ""}, 2},
    {"mlp.gate_up_proj.bias", {"mlp.gate_proj.bias", "mlp.up_proj.bias", ""}, 2},
}};

// The names of a fused tensor's parts; empty for any other name.
std::vector<std::string> fused_parts(const std::string& name) {
  for (const Fused& f : kFused) {
    if (!name.ends_with(f.suffix)) continue;
    const std::string prefix = name.substr(0, name.size() - f.suffix.size());
    if (!prefix.empty() && prefix.back() != '.') continue;
    std::vector<std::string> parts;
    for (size_t i = 0; i < f.count; ++i) parts.push_back(prefix + std::string(f.parts[i]));
    return parts;
  }
  return {};
}

DType source_dtype(const WeightTensor& t) {
  const std::optional<DType> d = dtype_from_name(t.dtype);
  const bool fp8 = d && is_float8(*d);
  FP8LLM_CHECK(d && (*d == DType::BF16 || *d == DType::F16 || *d == DType::F32),
               "tensor '{}': dtype '{}' cannot be written (BF16, F16 or F32){}", t.name, t.dtype,
               fp8 ? "; FP8 codes and scales are made by quantizing such a tensor" : "");
  return *d;
}

[[noreturn]] void unknown_name(const WeightTensor& t, const std::string& part, size_t count) {
  if (part != t.name) fail("tensor '{}': this model has no '{}'", t.name, part);
  if (t.name.ends_with("_scale") || t.name.ends_with("_scale_inv")) {
    fail(
        "tensor '{}': scales are not written; they come from quantizing the weight (pass it in "
        "BF16, F16 or F32)",
        t.name);
  }
  fail(
      "tensor '{}' is not a weight of this model ({} tensors, named as in its checkpoint, e.g. "
      "'model.layers.0.self_attn.q_proj.weight'; fused 'qkv_proj' and 'gate_up_proj' are "
      "accepted too)",
      t.name, count);
}

bool finite_at(DType dtype, const std::byte* data, int64_t i) {
  if (dtype == DType::F32) {
    float v;
    std::memcpy(&v, data + i * 4, 4);
    return std::isfinite(v);
  }
  uint16_t h;
  std::memcpy(&h, data + i * 2, 2);
  const uint16_t exponent = dtype == DType::BF16 ? 0x7F80 : 0x7C00;
  return (h & exponent) != exponent;  // an all-ones exponent is an infinity or a NaN
}

float value_at(DType dtype, const std::byte* data, int64_t i) {
  float v = 0;
  to_f32(dtype, data + i * static_cast<int64_t>(dtype_size(dtype)), &v, 1);
  return v;
}

// The index of the first NaN or infinity among `count` values, or -1.
int64_t first_nonfinite(DType dtype, const std::byte* data, int64_t count) {
  constexpr int64_t kChunk = 1 << 16;
  std::atomic<int64_t> first{count};
  parallel_for(static_cast<size_t>((count + kChunk - 1) / kChunk), 1, [&](size_t b, size_t e) {
    for (auto c = static_cast<int64_t>(b); c < static_cast<int64_t>(e); ++c) {
      const int64_t end = std::min(count, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < end; ++i) {
        if (finite_at(dtype, data, i)) continue;
        int64_t seen = first.load();
        while (i < seen && !first.compare_exchange_weak(seen, i)) {
        }
        break;
      }
    }
  });
  return first.load() < count ? first.load() : -1;
}

}  // namespace

WeightUpdatePlan plan_weight_update(const ModelConfig& config, const WeightStore& store,
                                    Device device, std::span<const WeightTensor> tensors) {
  WeightUpdatePlan plan;
  plan.specs = expected_weights(config);
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < plan.specs.size(); ++i) index.emplace(plan.specs[i].name, i);
  std::vector<std::string> written_as(plan.specs.size());
  const auto add = [&](const WeightTensor& t, DType dtype, size_t target, const std::byte* data) {
    const WeightSpec& spec = plan.specs[target];
    const std::string& before = written_as[target];
    FP8LLM_CHECK(before.empty(), "tensor '{}' is given twice{}", spec.name,
                 before == t.name ? "" : fmt::format(" (as '{}' and as '{}')", before, t.name));
    written_as[target] = t.name;
    const HeldWeight held = store.held_weight(spec);
    FP8LLM_CHECK(held.scheme || held.dtype == DType::BF16 || held.dtype == DType::F16 ||
                     held.dtype == DType::F32,
                 "tensor '{}': held as {}, which updates do not write", spec.name,
                 dtype_name(held.dtype));
    plan.writes.push_back({&spec, dtype, data, t.device != Device::Cpu});
    plan.given.push_back(t.name);
    plan.bytes += static_cast<uint64_t>(num_elements(spec.shape)) * dtype_size(dtype);
    plan.quantized += held.scheme.has_value();
  };

  std::vector<const WeightTensor*> tied_heads;
  for (const WeightTensor& t : tensors) {
    if (is_ignorable_tensor(t.name)) continue;
    const DType dtype = source_dtype(t);
    FP8LLM_CHECK(t.device == Device::Cpu || (t.device == device && store.reads_device_memory()),
                 "tensor '{}' is in {} memory, which an engine on the {} does not read (copy it "
                 "to the host)",
                 t.name, to_string(t.device), to_string(device));
    std::vector<std::string> parts = fused_parts(t.name);
    if (parts.empty()) parts.push_back(t.name);
    const bool tied_head = config.tie_word_embeddings && t.name == "lm_head.weight";
    if (tied_head) parts = {"model.embed_tokens.weight"};
    std::vector<size_t> targets;
    for (const std::string& part : parts) {
      const auto it = index.find(part);
      if (it == index.end()) unknown_name(t, part, plan.specs.size());
      targets.push_back(it->second);
    }
    Shape want = plan.specs[targets[0]].shape;
    for (size_t i = 1; i < targets.size(); ++i) want[0] += plan.specs[targets[i]].shape[0];
    FP8LLM_CHECK(t.shape == want, "tensor '{}': shape {} where the model has {}{}", t.name,
                 shape_str(t.shape), shape_str(want),
                 targets.size() > 1 ? " (its parts stacked by rows)" : "");
    FP8LLM_CHECK(t.data != nullptr || num_elements(want) == 0, "tensor '{}': no data", t.name);
    if (tied_head) {
      tied_heads.push_back(&t);  // written below unless the embedding comes under its own name
      continue;
    }
    const auto* at = static_cast<const std::byte*>(t.data);
    for (size_t target : targets) {
      add(t, dtype, target, at);
      at += static_cast<size_t>(num_elements(plan.specs[target].shape)) * dtype_size(dtype);
    }
  }
  for (const WeightTensor* t : tied_heads) {
    const size_t embedding = index.at("model.embed_tokens.weight");
    if (written_as[embedding].empty() || written_as[embedding] == t->name)
      add(*t, source_dtype(*t), embedding, static_cast<const std::byte*>(t->data));
  }

  std::vector<WeightWrite> on_device;
  for (size_t i = 0; i < plan.writes.size(); ++i) {
    const WeightWrite& w = plan.writes[i];
    if (w.on_device) {
      on_device.push_back(w);
      continue;
    }
    const int64_t bad = first_nonfinite(w.dtype, w.data, num_elements(w.spec->shape));
    if (bad < 0) continue;
    fail("tensor '{}'{}: element {} is {}; nothing was written", plan.given[i],
         plan.given[i] == w.spec->name ? "" : fmt::format(" (its part '{}')", w.spec->name), bad,
         value_at(w.dtype, w.data, bad));
  }
  store.check_device_sources(on_device);
  return plan;
}

}  // namespace fp8llm
