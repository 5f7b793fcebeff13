#include "loader/load_plan.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "core/log.h"

namespace fp8llm {
namespace {

bool is_float_weight_dtype(DType t) {
  return t == DType::BF16 || t == DType::F16 || t == DType::F32;
}

std::string file_of(const CheckpointTensor& t) {
  return t.file->path().filename().string();
}

// The list of expected tensors grows with num_hidden_layers: a config.json claiming more layers
// than the checkpoint holds (say 10^9) would allocate without bound before any tensor is missed,
// so the count is checked against the checkpoint first, naming the first layer that is absent.
void check_layer_count(const Checkpoint& checkpoint, const ModelConfig& config) {
  const int64_t needed = expected_weight_count(config);
  const auto held = static_cast<int64_t>(checkpoint.tensors().size());
  if (needed <= held) return;
  int64_t layer = 0;
  std::string probe;
  while (layer < config.num_layers) {
    probe = fmt::format("model.layers.{}.input_layernorm.weight", layer);
    if (checkpoint.find(probe) == nullptr) break;
    ++layer;
  }
  // Every layer is there, so the list is as long as the checkpoint allows: the tensor checks
  // below name what is missing.
  if (layer == config.num_layers) return;
  fail(
      "{}: config.json has num_hidden_layers {}, which needs {} tensors, but the checkpoint holds "
      "{} (tensor '{}' is missing)",
      checkpoint.dir().string(), config.num_layers, needed, held, probe);
}

}  // namespace

const PlannedTensor* LoadPlan::find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.spec.name == name) return &t;
  }
  return nullptr;
}

std::optional<Fp8Scheme> scheme_of(Quantization q) {
  switch (q) {
    case Quantization::None:
      return std::nullopt;
    case Quantization::Fp8Row:
      return Fp8Scheme::Row;
    case Quantization::Fp8Block:
      return Fp8Scheme::Block;
    case Quantization::Auto:
      break;
  }
  fail("quantization 'auto' must be settled (resolve_load) before a load is planned");
}

Quantization quantization_of(std::optional<Fp8Scheme> scheme) {
  if (!scheme) return Quantization::None;
  return *scheme == Fp8Scheme::Row ? Quantization::Fp8Row : Quantization::Fp8Block;
}

void check_prequantized_weights(const Checkpoint& checkpoint, const PrequantConfig& prequant) {
  const CheckpointTensor* projection = nullptr;
  for (const auto& t : checkpoint.tensors()) {
    if (!t.info->name.ends_with("_proj.weight")) continue;
    if (t.info->dtype == DType::F8_E4M3) return;
    if (!projection) projection = &t;
  }
  if (!projection) return;  // no projections at all: the plan names what is missing
  fail(
      "{}: quantization_config says the weights are FP8 ({}), but no projection is F8_E4M3 "
      "(tensor '{}' is {}); remove the quantization_config to quantize the {} weights on the fly",
      (checkpoint.dir() / "config.json").string(), prequant.description, projection->info->name,
      dtype_name(projection->info->dtype), dtype_name(projection->info->dtype));
}

LoadPlan build_load_plan(const Checkpoint& checkpoint, const ModelConfig& config,
                         std::optional<Fp8Scheme> scheme) {
  const std::string dir = checkpoint.dir().string();
  LoadPlan plan;
  plan.config = config;
  plan.scheme = scheme;
  if (config.quantization_config) {
    plan.prequant = parse_quantization_config(*config.quantization_config,
                                              (checkpoint.dir() / "config.json").string());
    plan.scheme = plan.prequant->scheme;
    check_prequantized_weights(checkpoint, *plan.prequant);
  }

  check_layer_count(checkpoint, config);
  // name -> the planned tensor (without its source yet), for every tensor to load.
  std::map<std::string, PlannedTensor> planned;
  std::set<std::string> input_scales;  // static activation scales of pre-quantized projections
  const std::vector<WeightSpec> specs = expected_weights(config);

  // Every expected tensor must be present, with the shape the config implies.
  for (const auto& s : specs) {
    const CheckpointTensor* src = checkpoint.find(s.name);
    FP8LLM_CHECK(src != nullptr,
                 "{}: tensor '{}' is missing (a {} model with this config.json needs it)", dir,
                 s.name, config.model_type);
    FP8LLM_CHECK(src->info->shape == s.shape,
                 "{}: tensor '{}' has shape {} but config.json implies {}", file_of(*src), s.name,
                 shape_str(src->info->shape), shape_str(s.shape));
    const DType dt = src->info->dtype;
    if (s.quantizable && dt == DType::F8_E4M3) {
      FP8LLM_CHECK(plan.prequant.has_value(),
                   "{}: tensor '{}' is F8_E4M3 but config.json has no quantization_config saying "
                   "how it is scaled",
                   file_of(*src), s.name);
      const PrequantConfig& pq = *plan.prequant;
      const int64_t n = s.shape[0], k = s.shape[1];
      const Shape want = weight_scale_shape(pq.scheme, n, k);
      const std::string scale_name = pq.scale_name(s.name);
      const CheckpointTensor* sc = checkpoint.find(scale_name);
      FP8LLM_CHECK(sc != nullptr,
                   "{}: tensor '{}' is missing (the scale of the FP8 weight '{}', {})", dir,
                   scale_name, s.name, pq.description);
      const DType sdt = sc->info->dtype;
      FP8LLM_CHECK(sdt == DType::F32 || sdt == DType::BF16 || sdt == DType::F16,
                   "{}: tensor '{}' has dtype {}; a weight scale must be F32, BF16 or F16",
                   file_of(*sc), scale_name, dtype_name(sdt));
      const Shape& got = sc->info->shape;
      const bool ok =
          pq.per_tensor_weight_scale ? num_elements(got) == 1 && got.size() <= 1 : got == want;
      FP8LLM_CHECK(ok, "{}: tensor '{}' has shape {} but a {} scale of a {} weight is {}",
                   file_of(*sc), scale_name, shape_str(got), pq.description, shape_str(s.shape),
                   pq.per_tensor_weight_scale ? std::string("[] or [1]") : shape_str(want));
      PlannedTensor w{s, *src, std::nullopt, static_cast<uint64_t>(n * k), pq.scheme, false};
      planned.emplace(s.name, std::move(w));
      WeightSpec scale_spec{scale_name, s.role, s.layer, want, false};
      PlannedTensor sp{scale_spec,   *sc,
                       std::nullopt, static_cast<uint64_t>(num_elements(want)) * sizeof(float),
                       pq.scheme,    true};
      planned.emplace(scale_name, std::move(sp));
      const std::string base = s.name.substr(0, s.name.size() - std::string("weight").size());
      input_scales.insert(base + "input_scale");
      continue;
    }
    FP8LLM_CHECK(is_float_weight_dtype(dt),
                 "{}: tensor '{}' has dtype {}; expected BF16, F16 or F32", file_of(*src), s.name,
                 dtype_name(dt));
    PlannedTensor p{s, *src, std::nullopt, 0};
    // A pre-quantized checkpoint is never quantized again: its unquantized projections (modules
    // it ignores) stay in their dtype.
    if (scheme && s.quantizable && !plan.prequant) {
      p.quantize = scheme;
      const Shape ss = weight_scale_shape(*scheme, s.shape[0], s.shape[1]);
      p.resident_bytes = static_cast<uint64_t>(num_elements(s.shape)) +
                         static_cast<uint64_t>(num_elements(ss)) * sizeof(float);
    } else {
      p.resident_bytes = src->info->nbytes;
    }
    planned.emplace(s.name, std::move(p));
  }

  // Every checkpoint tensor must be expected (or known to be unused); plan them in file order.
  bool static_scales_seen = false;
  for (const auto& t : checkpoint.tensors()) {
    const std::string& name = t.info->name;
    auto it = planned.find(name);
    if (it != planned.end()) {
      PlannedTensor& p = it->second;
      plan.source_bytes += t.info->nbytes;
      plan.resident_bytes += p.resident_bytes;
      plan.largest_tensor_bytes = std::max(plan.largest_tensor_bytes, t.info->nbytes);
      plan.tensors.push_back(std::move(p));
    } else if (input_scales.count(name)) {
      // Static activation scales: the engine computes activation scales at run time.
      static_scales_seen = true;
      plan.ignored.push_back(name);
    } else if (is_ignorable_tensor(name) ||
               (config.tie_word_embeddings && name == "lm_head.weight")) {
      // Tied checkpoints sometimes carry a copy of the embedding as lm_head; the tie wins.
      plan.ignored.push_back(name);
    } else {
      fail("{}: tensor '{}' is not part of a {} model with this config.json (unknown tensor)",
           file_of(t), name, config.model_type);
    }
  }
  if (plan.prequant) {
    size_t kept = 0, projections = 0;
    const PlannedTensor* first = nullptr;
    for (const auto& t : plan.tensors) {
      if (!t.spec.quantizable || t.is_weight_scale) continue;
      ++projections;
      if (t.prequantized) continue;
      ++kept;
      if (!first) first = &t;
    }
    if (first) {
      log_info(
          "load: {}: {} of {} projections are stored unquantized (the first is '{}', {}) "
          "and load as stored",
          dir, kept, projections, first->spec.name, dtype_name(first->source.info->dtype));
    }
  }
  if (static_scales_seen) {
    log_info(
        "load: {} has static activation scales (input_scale); they are not used: activations "
        "are scaled dynamically, {}",
        dir, plan.scheme == Fp8Scheme::Block ? "per token per 128 columns" : "per token");
  }
  for (const auto& name : plan.ignored) log_debug("load plan: ignoring tensor '{}'", name);
  return plan;
}

}  // namespace fp8llm
