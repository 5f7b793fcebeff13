#include "loader/load_plan.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "core/log.h"

namespace fp8llm {
namespace {

bool is_float_weight_dtype(DType t) { return t == DType::BF16 || t == DType::F16 || t == DType::F32; }

std::string file_of(const CheckpointTensor& t) { return t.file->path().filename().string(); }

}  // namespace

const PlannedTensor* LoadPlan::find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.spec.name == name) return &t;
  }
  return nullptr;
}

std::optional<Fp8Scheme> parse_quantization_flag(const std::string& text) {
  if (text == "none") return std::nullopt;
  if (text == "fp8-row") return Fp8Scheme::Row;
  if (text == "fp8-block") return Fp8Scheme::Block;
  fail("--quantization '{}' is not one of: fp8-row, fp8-block, none", text);
}

LoadPlan build_load_plan(const Checkpoint& checkpoint, const ModelConfig& config,
                         std::optional<Fp8Scheme> scheme) {
  const std::string dir = checkpoint.dir().string();
  FP8LLM_CHECK(!config.quantization_config.has_value(),
               "{}: config.json has a quantization_config: this is a pre-quantized checkpoint, "
               "which this loader does not read; use the BF16 original",
               dir);

  LoadPlan plan;
  plan.config = config;
  plan.scheme = scheme;

  std::map<std::string, const WeightSpec*> expected;
  const std::vector<WeightSpec> specs = expected_weights(config);
  for (const auto& s : specs) expected.emplace(s.name, &s);

  // Every expected tensor must be present, with the shape the config implies.
  for (const auto& s : specs) {
    const CheckpointTensor* src = checkpoint.find(s.name);
    FP8LLM_CHECK(src != nullptr, "{}: tensor '{}' is missing (a {} model with this config.json needs it)",
                 dir, s.name, config.model_type);
    FP8LLM_CHECK(src->info->shape == s.shape,
                 "{}: tensor '{}' has shape {} but config.json implies {}", file_of(*src), s.name,
                 shape_str(src->info->shape), shape_str(s.shape));
    FP8LLM_CHECK(is_float_weight_dtype(src->info->dtype),
                 "{}: tensor '{}' has dtype {}; expected BF16, F16 or F32", file_of(*src), s.name,
                 dtype_name(src->info->dtype));
  }

  // Every checkpoint tensor must be expected (or known to be unused).
  for (const auto& t : checkpoint.tensors()) {
    const std::string& name = t.info->name;
    if (expected.count(name)) {
      const WeightSpec& s = *expected.at(name);
      PlannedTensor p{s, t, std::nullopt, 0};
      if (scheme && s.quantizable) {
        p.quantize = scheme;
        const Shape ss = weight_scale_shape(*scheme, s.shape[0], s.shape[1]);
        p.resident_bytes = static_cast<uint64_t>(num_elements(s.shape)) +
                           static_cast<uint64_t>(num_elements(ss)) * sizeof(float);
      } else {
        p.resident_bytes = t.info->nbytes;
      }
      plan.source_bytes += t.info->nbytes;
      plan.resident_bytes += p.resident_bytes;
      plan.largest_tensor_bytes = std::max(plan.largest_tensor_bytes, t.info->nbytes);
      plan.tensors.push_back(std::move(p));
    } else if (is_ignorable_tensor(name) ||
               (config.tie_word_embeddings && name == "lm_head.weight")) {
      // Tied checkpoints sometimes carry a copy of the embedding as lm_head; the tie wins.
      plan.ignored.push_back(name);
    } else {
      fail("{}: tensor '{}' is not part of a {} model with this config.json (unknown tensor)",
           file_of(t), name, config.model_type);
    }
  }
  for (const auto& name : plan.ignored) log_debug("load plan: ignoring tensor '{}'", name);
  return plan;
}

}  // namespace fp8llm
