#include "lora/peft_adapter.h"

#include <cctype>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <string_view>

#include "core/dtype.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"
#include "core/json_view.h"
#include "formats/safetensors.h"

namespace fp8llm {
namespace {

struct Target {
  const char* module;  // PEFT's module name
  const char* parent;  // self_attn or mlp
  LinearKind kind;
};
constexpr Target kTargets[] = {
    {"q_proj", "self_attn", LinearKind::Q}, {"k_proj", "self_attn", LinearKind::K},
    {"v_proj", "self_attn", LinearKind::V}, {"o_proj", "self_attn", LinearKind::O},
    {"gate_proj", "mlp", LinearKind::Gate}, {"up_proj", "mlp", LinearKind::Up},
    {"down_proj", "mlp", LinearKind::Down},
};

const Target& target_of(LinearKind kind) {
  for (const Target& t : kTargets)
    if (t.kind == kind) return t;
  fail("lora: lm_head takes no adapter");
}

std::string module_path(int64_t layer, const Target& t) {
  return "model.layers." + std::to_string(layer) + "." + t.parent + "." + t.module;
}

struct Settings {
  int64_t rank = 0;
  float scale = 0;
  std::set<std::pair<int64_t, LinearKind>> targets;
};

Settings read_config(const ModelConfig& c, const std::string& text, const std::string& file) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  FP8LLM_CHECK(!doc.is_discarded(), "{}: not valid JSON", file);
  check_json_depth(doc, file);
  const JsonView root(doc, file);
  FP8LLM_CHECK(doc.is_object(), "{}: expected a JSON object", file);
  if (root.has("peft_type"))
    FP8LLM_CHECK(root["peft_type"].as_string() == "LORA", "{}: peft_type: {} is not LORA", file,
                 doc["peft_type"].dump());
  Settings s;
  s.rank = root["r"].as_int();
  FP8LLM_CHECK(s.rank > 0, "{}: r: {} must be positive", file, s.rank);
  const double alpha = root.has("lora_alpha") ? root["lora_alpha"].as_number() : 8.0;
  FP8LLM_CHECK(alpha > 0 && std::isfinite(alpha), "{}: lora_alpha: {} must be positive", file,
               alpha);
  const bool rslora = root.bool_or("use_rslora", false);
  s.scale = static_cast<float>(rslora ? alpha / std::sqrt(static_cast<double>(s.rank))
                                      : alpha / static_cast<double>(s.rank));
  // What the engine cannot apply exactly is refused rather than dropped.
  FP8LLM_CHECK(!root.bool_or("use_dora", false), "{}: use_dora: DoRA adapters are not supported",
               file);
  FP8LLM_CHECK(!root.bool_or("fan_in_fan_out", false),
               "{}: fan_in_fan_out: only Linear layers (false) are supported", file);
  if (root.has("bias"))
    FP8LLM_CHECK(root["bias"].as_string() == "none", "{}: bias: only \"none\" is supported", file);
  for (const char* field : {"modules_to_save", "rank_pattern", "alpha_pattern"}) {
    if (!root.has(field)) continue;
    const nlohmann::json& v = doc[field];
    FP8LLM_CHECK(v.empty(),
                 "{}: {}: not supported (the adapter must give every module the same "
                 "r and lora_alpha, and save no whole modules)",
                 file, field);
  }
  std::set<int64_t> layers;
  if (root.has("layers_to_transform")) {
    const nlohmann::json& v = doc["layers_to_transform"];
    if (v.is_number_integer()) {
      layers.insert(v.get<int64_t>());
    } else {
      for (size_t i = 0; i < root["layers_to_transform"].as_array().size(); ++i)
        layers.insert(root["layers_to_transform"][i].as_int());
    }
    for (int64_t l : layers)
      FP8LLM_CHECK(l >= 0 && l < c.num_layers,
                   "{}: layers_to_transform: layer {} is not one of the model's {}", file, l,
                   c.num_layers);
  } else {
    for (int64_t l = 0; l < c.num_layers; ++l) layers.insert(l);
  }
  FP8LLM_CHECK(root.has("target_modules"), "{}: target_modules: missing", file);
  const nlohmann::json& tm = doc["target_modules"];
  if (tm.is_string()) {
    // PEFT: a string is a regular expression over the full module name ("all-linear" aside).
    const std::string pattern = tm.get<std::string>();
    std::regex re;
    try {
      re = std::regex(pattern);
    } catch (const std::regex_error&) {
      fail("{}: target_modules: {} is not a regular expression", file, tm.dump());
    }
    for (int64_t l : layers) {
      for (const Target& t : kTargets) {
        if (pattern == "all-linear" || std::regex_match(module_path(l, t), re))
          s.targets.insert({l, t.kind});
      }
    }
  } else {
    FP8LLM_CHECK(tm.is_array(), "{}: target_modules: expected a list of module names", file);
    for (size_t i = 0; i < tm.size(); ++i) {
      const std::string name = root["target_modules"][i].as_string();
      const Target* found = nullptr;
      for (const Target& t : kTargets)
        if (name == t.module) found = &t;
      FP8LLM_CHECK(found != nullptr,
                   "{}: target_modules: {} is not one of q_proj, k_proj, v_proj, o_proj, "
                   "gate_proj, up_proj, down_proj",
                   file, name);
      for (int64_t l : layers) s.targets.insert({l, found->kind});
    }
  }
  FP8LLM_CHECK(!s.targets.empty(), "{}: target_modules: no module of the model matches", file);
  return s;
}

// "base_model.model.model.layers.3.mlp.up_proj.lora_B.default.weight" -> (3, Up, 'B').
struct TensorName {
  int64_t layer = -1;
  LinearKind kind = LinearKind::Q;
  char factor = 0;
};

// Read by hand: a training loop replaces an adapter's hundreds of tensors every step, and a
// regular expression per name would take longer than the copy.
bool eat(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

std::optional<TensorName> parse_name(std::string_view s) {
  eat(s, "base_model.model.");
  if (!eat(s, "model.layers.")) return std::nullopt;
  size_t digits = 0;
  while (digits < s.size() && digits < 9 && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits == 9) return std::nullopt;
  TensorName t;
  t.layer = std::stoll(std::string(s.substr(0, digits)));
  s.remove_prefix(digits);
  const Target* found = nullptr;
  for (const Target& target : kTargets) {
    std::string_view rest = s;
    if (eat(rest, ".") && eat(rest, target.parent) && eat(rest, ".") && eat(rest, target.module) &&
        eat(rest, ".lora_")) {
      found = &target;
      s = rest;
      break;
    }
  }
  if (found == nullptr || s.empty() || (s[0] != 'A' && s[0] != 'B')) return std::nullopt;
  t.kind = found->kind;
  t.factor = s[0];
  s.remove_prefix(1);
  if (eat(s, ".weight") && s.empty()) return t;
  // An adapter name between the factor and ".weight", as in an in-memory PEFT state dict.
  if (!eat(s, ".") || !s.ends_with(".weight")) return std::nullopt;
  s.remove_suffix(7);
  if (s.empty()) return std::nullopt;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return std::nullopt;
  return t;
}

std::vector<uint16_t> to_bf16(const TensorView& v, const std::string& name,
                              const std::string& src) {
  FP8LLM_CHECK(v.dtype == DType::BF16 || v.dtype == DType::F16 || v.dtype == DType::F32,
               "{}: {}: dtype {} (expected BF16, F16 or F32)", src, name, dtype_name(v.dtype));
  const auto n = static_cast<size_t>(v.numel());
  std::vector<float> f(n);
  to_f32(v.dtype, v.data, f.data(), n);
  std::vector<uint16_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    FP8LLM_CHECK(std::isfinite(f[i]), "{}: {}: element {} is {}", src, name, i, f[i]);
    out[i] = f32_to_bf16(f[i]);
  }
  return out;
}

}  // namespace

const char* peft_module_name(LinearKind kind) {
  return target_of(kind).module;
}

std::string peft_factor_name(int64_t layer, LinearKind kind, char factor) {
  return "base_model.model." + module_path(layer, target_of(kind)) + ".lora_" + factor + ".weight";
}

PeftLayout peft_layout(const ModelConfig& config, const std::string& config_json,
                       const std::vector<std::pair<std::string, TensorView>>& tensors,
                       const std::string& source) {
  const Settings s = read_config(config, config_json, source + ": adapter_config.json");
  std::map<std::pair<int64_t, LinearKind>, PeftModule> modules;
  constexpr size_t kNone = PeftModule::kNone;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, view] = tensors[i];
    const std::optional<TensorName> t = parse_name(name);
    FP8LLM_CHECK(t.has_value(), "{}: {}: not a LoRA factor of a q/k/v/o/gate/up/down projection",
                 source, name);
    FP8LLM_CHECK(s.targets.count({t->layer, t->kind}) > 0,
                 "{}: {}: this module is not among the adapter's target_modules (or "
                 "layers_to_transform)",
                 source, name);
    const ProjectionShape p = projection_shape(config, t->kind);
    const Shape want = t->factor == 'A' ? Shape{s.rank, p.in} : Shape{p.out, s.rank};
    FP8LLM_CHECK(view.shape == want, "{}: {}: shape {}, expected {} (r {}, the model's {} x {})",
                 source, name, shape_str(view.shape), shape_str(want), s.rank, p.out, p.in);
    FP8LLM_CHECK(view.dtype == DType::BF16 || view.dtype == DType::F16 || view.dtype == DType::F32,
                 "{}: {}: dtype {} (expected BF16, F16 or F32)", source, name,
                 dtype_name(view.dtype));
    PeftModule& m = modules[{t->layer, t->kind}];
    m.layer = t->layer;
    m.kind = t->kind;
    size_t& at = t->factor == 'A' ? m.a : m.b;
    FP8LLM_CHECK(at == kNone, "{}: {}: given twice", source, name);
    at = i;
  }
  PeftLayout layout;
  layout.rank = s.rank;
  layout.scale = s.scale;
  for (const auto& target : s.targets) {
    const auto it = modules.find(target);
    FP8LLM_CHECK(it != modules.end() && it->second.a != kNone && it->second.b != kNone,
                 "{}: {} is targeted but its lora_A and lora_B are not both given", source,
                 module_path(target.first, target_of(target.second)));
    layout.modules.push_back(it->second);
  }
  return layout;
}

LoraAdapter parse_peft_adapter(const ModelConfig& config, const std::string& config_json,
                               const std::vector<std::pair<std::string, TensorView>>& tensors,
                               const std::string& source) {
  const PeftLayout layout = peft_layout(config, config_json, tensors, source);
  LoraAdapter adapter;
  adapter.rank = layout.rank;
  adapter.scale = layout.scale;
  for (const PeftModule& pm : layout.modules) {
    LoraModule& m = adapter.modules.emplace_back();
    m.layer = pm.layer;
    m.kind = pm.kind;
    m.a = to_bf16(tensors[pm.a].second, tensors[pm.a].first, source);
    m.b = to_bf16(tensors[pm.b].second, tensors[pm.b].first, source);
  }
  return adapter;
}

LoraAdapter load_peft_adapter(const ModelConfig& config, const std::filesystem::path& dir) {
  const std::string source = dir.string();
  FP8LLM_CHECK(std::filesystem::is_directory(dir), "--lora {}: not a directory", source);
  const std::string json = read_text_file(dir / "adapter_config.json");
  const auto file = SafetensorsFile::open(dir / "adapter_model.safetensors");
  std::vector<std::pair<std::string, TensorView>> tensors;
  for (const TensorInfo& info : file->tensors()) tensors.emplace_back(info.name, file->view(info));
  return parse_peft_adapter(config, json, tensors, source);
}

}  // namespace fp8llm
