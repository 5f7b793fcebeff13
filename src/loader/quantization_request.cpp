#include "loader/quantization_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/error.h"
#include "core/json_depth.h"
#include "core/json_view.h"
#include "loader/load_plan.h"

namespace fp8llm {
namespace {

using nlohmann::json;

// Errors read "<source>: <json path>: <what is wrong>" (JsonView::fail); an absent member reads
// as null (JsonView::member), so "absent" and "null" are checked alike.

std::string show(const JsonView& v) {
  return v.json().dump();
}

bool one_of(const json& j, std::initializer_list<std::string_view> names) {
  return j.is_string() &&
         std::find(names.begin(), names.end(), j.get_ref<const std::string&>()) != names.end();
}

// A key not listed is refused rather than skipped: fp8llm cannot know it leaves the numerics alone.
void only_keys(const JsonView& obj, std::initializer_list<std::string_view> known,
               std::string_view what) {
  if (!obj.json().is_object()) return;
  for (const auto& [k, v] : obj.json().items()) {
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    std::string list;
    for (std::string_view n : known) list += fmt::format("{}{}", list.empty() ? "" : ", ", n);
    obj.member(k).fail(
        "not a known field of {} (known: {}); refused, as it could change the numerics", what,
        list);
  }
}

JsonView object_at(const JsonView& obj, std::string_view key) {
  const JsonView v = obj.member(key);
  if (!v.json().is_object()) v.fail("expected an object (got {})", show(v));
  return v;
}

void expect_null_or_false(const JsonView& obj, std::string_view key, std::string_view why) {
  const JsonView v = obj.member(key);
  if (!v.is_null() && v.json() != false) v.fail("{} is not supported ({})", show(v), why);
}

void expect_bool_or_null(const JsonView& obj, std::string_view key) {
  const JsonView v = obj.member(key);
  if (!v.is_null() && !v.json().is_boolean()) v.fail("expected true or false (got {})", show(v));
}

void expect_empty(const JsonView& obj, std::string_view key, std::string_view why) {
  const JsonView v = obj.member(key);
  if (!v.is_null() && !(v.json().is_object() && v.json().empty()))
    v.fail("{} is not supported ({})", show(v), why);
}

// Module lists of projections to leave unquantized: only the modules fp8llm never quantizes
// anyway (lm_head, the embeddings) may be named.
void expect_kept_modules_only(const JsonView& obj, std::string_view key) {
  const JsonView v = obj.member(key);
  if (v.is_null()) return;
  if (!v.json().is_array()) v.fail("expected a list of module names (got {})", show(v));
  for (size_t i = 0; i < v.json().size(); ++i) {
    const JsonView m = v[i];
    if (!m.json().is_string()) m.fail("expected a module name (got {})", show(m));
    const std::string& name = m.json().get_ref<const std::string&>();
    if (!name.ends_with("lm_head") && !name.ends_with("embed_tokens")) {
      m.fail(
          "leaving {} unquantized is not supported (fp8llm quantizes every decoder projection; "
          "only lm_head and embed_tokens, which it never quantizes, may be listed)",
          show(m));
    }
  }
}

// ---- torchao -------------------------------------------------------------------------------

// A value config_to_dict writes as {"_type": <type>, "_data": <name>} (enums, torch dtypes).
std::string tagged_name(const JsonView& j, std::string_view type) {
  if (!j.json().is_object() || j.member("_type").json() != type ||
      !j.member("_data").json().is_string()) {
    j.fail("expected {{\"_type\": \"{}\", \"_data\": <name>}} as config_to_dict writes it (got {})",
           type, show(j));
  }
  only_keys(j, {"_type", "_data"}, type);
  return j.member("_data").as_string();
}

void expect_e4m3(const JsonView& data, std::string_view key) {
  const JsonView v = data.member(key);
  if (v.is_null()) return;  // torchao's default: float8_e4m3fn
  const std::string name = tagged_name(v, "torch.dtype");
  if (name != "float8_e4m3fn") v.fail("{} is not supported (only float8_e4m3fn)", name);
}

enum class GranularityRole { Both, Activation, Weight };

// One granularity object; returns "PerRow" or "PerBlock" after checking its fields.
std::string granularity_kind(const JsonView& g, GranularityRole role) {
  if (!g.json().is_object() || !g.member("_type").json().is_string()) {
    g.fail(
        "expected a granularity as config_to_dict writes it ({{\"_type\": \"PerRow\", "
        "\"_version\": 1, \"_data\": {{\"dim\": -1}}}}), got {}",
        show(g));
  }
  only_keys(g, {"_type", "_version", "_data"}, "a granularity");
  const std::string type = g.member("_type").as_string();
  const JsonView version = g.member("_version");
  if (!version.is_null() && version.json() != 1)
    version.fail("{} is not supported (granularities are version 1)", show(version));
  const JsonView data = g.member("_data");
  if (!data.is_null() && !data.json().is_object())
    data.fail("expected an object (got {})", show(data));
  // A null _data reads as an empty object: every member is then absent.
  if (type == "PerRow") {
    only_keys(data, {"dim"}, "PerRow");
    const JsonView dim = data.member("dim");
    if (!dim.is_null() && dim.json() != -1)
      dim.fail("{} is not supported (only -1: one scale per row)", show(dim));
    return type;
  }
  if (type == "PerBlock") {
    only_keys(data, {"block_size"}, "PerBlock");
    if (role == GranularityRole::Both) {
      g.fail(
          "a single PerBlock is not supported: give the pair [PerBlock([1, 128]), "
          "PerBlock([128, 128])] (activations, weights)");
    }
    const bool activation = role == GranularityRole::Activation;
    const json want = activation ? json::array({1, 128}) : json::array({128, 128});
    const JsonView size = data.member("block_size");
    if (size.json() != want) {
      size.fail("{} is not supported for the {} (only {}: {})", show(size),
                activation ? "activations" : "weights", want.dump(),
                activation ? "one scale per token per 128 columns" : "128x128 weight tiles");
    }
    return type;
  }
  g.fail("{} is not supported (use PerRow or PerBlock)", type);
}

struct Granularity {
  Fp8Scheme scheme;
  std::string description;
};

Granularity parse_granularity(const JsonView& g) {
  if (g.is_null()) {
    g.fail(
        "absent, which torchao reads as PerTensor; PerTensor is not supported (use PerRow or "
        "PerBlock)");
  }
  if (g.json().is_object()) {
    granularity_kind(g, GranularityRole::Both);  // only PerRow gets through
    return {Fp8Scheme::Row, "PerRow"};
  }
  if (!g.json().is_array() || g.json().size() != 2)
    g.fail("expected one granularity or the pair [activation, weight] (got {})", show(g));
  const std::string a = granularity_kind(g[0], GranularityRole::Activation);
  const std::string b = granularity_kind(g[1], GranularityRole::Weight);
  if (a == "PerRow" && b == "PerRow") return {Fp8Scheme::Row, "[PerRow, PerRow]"};
  if (a == "PerBlock" && b == "PerBlock")
    return {Fp8Scheme::Block, "[PerBlock([1, 128]), PerBlock([128, 128])]"};
  g.fail(
      "[{}, {}] mixes granularities (use [PerRow, PerRow] or [PerBlock([1, 128]), "
      "PerBlock([128, 128])])",
      a, b);
}

void check_mm_config(const JsonView& v) {
  if (v.is_null()) return;
  if (!v.json().is_object() || v.member("_type").json() != "Float8MMConfig")
    v.fail("expected a Float8MMConfig as config_to_dict writes it (got {})", show(v));
  only_keys(v, {"_type", "_version", "_data"}, "Float8MMConfig");
  const JsonView data = object_at(v, "_data");
  only_keys(data, {"emulate", "use_fast_accum", "pad_inner_dim"}, "Float8MMConfig");
  for (const char* k : {"emulate", "use_fast_accum", "pad_inner_dim"}) expect_bool_or_null(data, k);
}

QuantizationRequest parse_torchao_config(const JsonView& j) {
  if (!j.json().is_object())
    j.fail("expected a torchao config object {{\"_type\": ..., \"_data\": ...}} (got {})", show(j));
  only_keys(j, {"_type", "_version", "_data"}, "a torchao config");
  const JsonView type = j.member("_type");
  if (!type.json().is_string()) type.fail("expected the config class name (got {})", show(type));
  const std::string t = type.as_string();
  if (t == "FqnToConfig" || t == "ModuleFqnToConfig") {
    type.fail(
        "{} (per-module configs) is not supported: pass the "
        "Float8DynamicActivationFloat8WeightConfig itself, applied to every "
        "projection",
        t);
  }
  if (t != "Float8DynamicActivationFloat8WeightConfig") {
    type.fail(
        "{} is not supported (only Float8DynamicActivationFloat8WeightConfig: float8_e4m3fn "
        "weights and dynamically quantized float8_e4m3fn activations)",
        t);
  }
  const JsonView version = j.member("_version");
  if (!version.is_null() && version.json() != 1 && version.json() != 2)
    version.fail("{} is not supported (versions 1 and 2 are read)", show(version));

  const JsonView data = object_at(j, "_data");
  only_keys(data,
            {"activation_dtype", "weight_dtype", "granularity", "packing_format", "mm_config",
             "activation_value_lb", "activation_value_ub", "kernel_preference",
             "set_inductor_config", "alg_id"},
            t);
  expect_e4m3(data, "activation_dtype");
  expect_e4m3(data, "weight_dtype");
  const Granularity g = parse_granularity(data.member("granularity"));
  if (const JsonView p = data.member("packing_format"); !p.is_null()) {
    const std::string name = tagged_name(p, "Float8PackingFormat");
    if (name != "PLAIN") p.fail("{} is not supported (only PLAIN: dense weights)", name);
  }
  check_mm_config(data.member("mm_config"));
  for (const char* k : {"activation_value_lb", "activation_value_ub"}) {
    const JsonView v = data.member(k);
    if (!v.is_null()) {
      v.fail(
          "{} is not supported (it clamps the activation amax; fp8llm's activation scales are "
          "amax * float32(1/448) of the amax itself: use null)",
          show(v));
    }
  }
  if (const JsonView k = data.member("kernel_preference"); !k.is_null()) {
    const std::string name = tagged_name(k, "KernelPreference");
    if (!one_of(json(name),
                {"AUTO", "TORCH", "FBGEMM", "MSLK", "EMULATED", "DEEPGEMM", "TRITON", "CUTEDSL"}))
      k.fail("{} is not a KernelPreference", name);
  }
  expect_bool_or_null(data, "set_inductor_config");
  if (const JsonView a = data.member("alg_id"); !a.is_null() && !a.json().is_number_integer())
    a.fail("expected an integer (got {})", show(a));
  return {g.scheme, fmt::format("torchao {}, granularity {}", t, g.description)};
}

// transformers' TorchAoConfig.to_dict(), the quantization_config of a torchao checkpoint.
QuantizationRequest parse_torchao_quantization_config(const JsonView& j) {
  only_keys(j,
            {"quant_method", "quant_type", "quant_type_kwargs", "modules_to_not_convert",
             "include_input_output_embeddings", "include_embedding", "untie_embedding_weights"},
            "a torchao quantization_config");
  const JsonView qt = j.member("quant_type");
  if (qt.json().is_string()) {
    qt.fail(
        "{} is a legacy string quant type; give the config as config_to_dict writes it "
        "({{\"default\": {{\"_type\": \"Float8DynamicActivationFloat8WeightConfig\", ...}}}})",
        show(qt));
  }
  if (!qt.json().is_object() || !qt.contains("default"))
    qt.fail("expected {{\"default\": <torchao config>}} (got {})", show(qt));
  for (const auto& [k, v] : qt.json().items()) {
    if (k != "default")
      qt.member(k).fail(
          "per-module configs are not supported (only \"default\", for every projection)");
  }
  expect_empty(j, "quant_type_kwargs", "it only applies to string quant types");
  expect_kept_modules_only(j, "modules_to_not_convert");
  for (const char* k : {"include_input_output_embeddings", "include_embedding"})
    expect_null_or_false(j, k, "fp8llm keeps the embeddings and lm_head in the checkpoint dtype");
  expect_bool_or_null(j, "untie_embedding_weights");
  return parse_torchao_config(qt.member("default"));
}

// ---- fine-grained fp8 ------------------------------------------------------------------------

QuantizationRequest parse_fp8(const JsonView& j) {
  only_keys(j,
            {"quant_method", "fmt", "activation_scheme", "weight_block_size",
             "modules_to_not_convert", "ignored_layers", "dequantize"},
            "an fp8 quantization_config");
  if (const JsonView f = j.member("fmt"); !f.is_null() && f.json() != "e4m3")
    f.fail("{} is not supported (only e4m3)", show(f));
  const JsonView act = j.member("activation_scheme");
  if (act.json() == "static") {
    act.fail(
        "\"static\" is not supported (static scales come from calibration; fp8llm "
        "quantizes activations dynamically: use \"dynamic\")");
  }
  if (!act.is_null() && act.json() != "dynamic")
    act.fail("{} is not supported (only \"dynamic\")", show(act));
  const JsonView bs = j.member("weight_block_size");
  if (bs.is_null()) {
    bs.fail(
        "absent, which means one scale per weight tensor; per-tensor FP8 is not supported "
        "(use [128, 128])");
  }
  if (bs.json() != json::array({128, 128}))
    bs.fail("{} is not supported (only [128, 128])", show(bs));
  expect_kept_modules_only(j, "modules_to_not_convert");
  expect_kept_modules_only(j, "ignored_layers");
  expect_null_or_false(j, "dequantize",
                       "it loads the weights unquantized: use --quantization none");
  return {Fp8Scheme::Block, "fp8, weight_block_size [128, 128]"};
}

// ---- compressed-tensors ----------------------------------------------------------------------

void check_float8_args(const JsonView& a) {
  only_keys(a,
            {"num_bits", "type", "symmetric", "group_size", "strategy", "block_structure",
             "dynamic", "actorder", "observer", "observer_kwargs", "scale_dtype", "zp_dtype"},
            "compressed-tensors quantization args");
  const JsonView bits = a.member("num_bits");
  const JsonView type = a.member("type");
  if (bits.json() != 8 || type.json() != "float") {
    a.fail("num_bits {} type {} is not supported (only 8-bit float, i.e. float8_e4m3fn)",
           show(bits), show(type));
  }
  if (const JsonView s = a.member("symmetric"); !s.is_null() && s.json() != true)
    s.fail("{} is not supported (only true)", show(s));
  expect_null_or_false(a, "actorder", "activation ordering belongs to GPTQ");
  expect_empty(a, "observer_kwargs", "fp8llm's scales take no observer options");
  if (const JsonView s = a.member("scale_dtype"); !s.is_null() && s.json() != "torch.float32")
    s.fail("{} is not supported (scales are float32)", show(s));
  if (const JsonView z = a.member("zp_dtype"); !z.is_null())
    z.fail("{} is not supported (symmetric scales have no zero point)", show(z));
}

QuantizationRequest parse_compressed_tensors(const JsonView& j) {
  only_keys(j,
            {"quant_method", "format", "quantization_status", "global_compression_ratio", "version",
             "config_groups", "ignore", "kv_cache_scheme", "sparsity_config", "transform_config"},
            "a compressed-tensors quantization_config");
  if (const JsonView f = j.member("format");
      !f.is_null() && !one_of(f.json(), {"float-quantized", "naive-quantized"}))
    f.fail("{} is not supported (float-quantized or naive-quantized)", show(f));
  if (const JsonView kv = j.member("kv_cache_scheme"); !kv.is_null())
    kv.fail("{} is not supported (the KV cache is not quantized)", show(kv));
  expect_empty(j, "sparsity_config", "sparse weights");
  expect_empty(j, "transform_config", "transforms such as rotations");
  expect_kept_modules_only(j, "ignore");

  const JsonView groups = object_at(j, "config_groups");
  if (groups.json().size() != 1) {
    groups.fail(
        "{} groups are not supported (one group, targets [\"Linear\"], applied to every "
        "projection)",
        groups.json().size());
  }
  const JsonView group = groups.member(groups.json().begin().key());
  if (!group.json().is_object()) group.fail("expected an object (got {})", show(group));
  only_keys(group, {"targets", "weights", "input_activations", "output_activations", "format"},
            "a compressed-tensors config group");
  if (const JsonView t = group.member("targets"); t.json() != json::array({"Linear"}))
    t.fail("{} is not supported (only [\"Linear\"]: every projection)", show(t));
  if (const JsonView f = group.member("format");
      !f.is_null() && !one_of(f.json(), {"float-quantized", "naive-quantized"}))
    f.fail("{} is not supported (float-quantized or naive-quantized)", show(f));
  if (const JsonView o = group.member("output_activations"); !o.is_null())
    o.fail("{} is not supported (outputs are not quantized)", show(o));

  const JsonView weights = object_at(group, "weights");
  check_float8_args(weights);
  expect_null_or_false(weights, "dynamic", "weights are quantized once, when they load");
  if (const JsonView obs = weights.member("observer");
      !obs.is_null() &&
      !one_of(obs.json(), {"minmax", "memoryless_minmax", "static_minmax", "memoryless"}))
    obs.fail("{} is not supported (fp8llm's weight scales come from the amax: minmax)", show(obs));
  const JsonView strategy = weights.member("strategy");
  Fp8Scheme scheme = Fp8Scheme::Row;
  if (strategy.json() == "channel") {
    if (const JsonView gs = weights.member("group_size"); !gs.is_null() && gs.json() != -1)
      gs.fail("{} is not supported with strategy channel", show(gs));
  } else if (strategy.json() == "block") {
    scheme = Fp8Scheme::Block;
    if (const JsonView bs = weights.member("block_structure"); bs.json() != json::array({128, 128}))
      bs.fail("{} is not supported (only [128, 128])", show(bs));
  } else {
    strategy.fail("{} is not supported (channel -> fp8-row, block -> fp8-block)", show(strategy));
  }

  const JsonView ia = group.member("input_activations");
  if (ia.is_null()) {
    ia.fail(
        "absent: weight-only FP8 is not supported (fp8llm quantizes activations "
        "dynamically; give {{\"dynamic\": true, \"strategy\": \"{}\"}})",
        scheme == Fp8Scheme::Row ? "token" : "group");
  }
  if (!ia.json().is_object()) ia.fail("expected an object (got {})", show(ia));
  check_float8_args(ia);
  if (const JsonView d = ia.member("dynamic"); d.json() != true) {
    d.fail(
        "{} is not supported (static activation scales come from calibration; "
        "fp8llm computes them at run time: use true)",
        show(d));
  }
  const JsonView as = ia.member("strategy");
  if (scheme == Fp8Scheme::Row && as.json() != "token") {
    as.fail("{} is not supported with channel weights (only \"token\")", show(as));
  }
  if (scheme == Fp8Scheme::Block &&
      (as.json() != "group" || ia.member("group_size").json() != 128)) {
    as.fail("{} with group_size {} is not supported with block weights (only \"group\", 128)",
            show(as), show(ia.member("group_size")));
  }
  return {scheme, scheme == Fp8Scheme::Row
                      ? "compressed-tensors fp8, channel weights, dynamic per-token activations"
                      : "compressed-tensors fp8, block 128x128 weights, dynamic 1x128 activations"};
}

// ---- dispatch ----------------------------------------------------------------------------------

QuantizationRequest parse_hf_quantization_config(const JsonView& j) {
  const JsonView method = j.member("quant_method");
  if (method.json() == "torchao") return parse_torchao_quantization_config(j);
  if (method.json() == "fp8") return parse_fp8(j);
  if (method.json() == "compressed-tensors") return parse_compressed_tensors(j);
  method.fail("{} is not supported (torchao, fp8 or compressed-tensors FP8 configs are read)",
              show(method));
}

// `where` names the text in errors.
json parse_json(std::string_view text, const JsonView& where) {
  try {
    json doc = json::parse(text);
    check_json_depth(doc, where.where());
    return doc;
  } catch (const json::exception& e) {
    where.fail("not valid JSON ({})", e.what());
  }
}

QuantizationRequest parse_config(const JsonView& j, bool allow_overrides) {
  if (!j.json().is_object()) j.fail("expected a JSON object (got {})", show(j));
  if (j.contains("_type")) return parse_torchao_config(j);
  if (j.contains("quant_method")) return parse_hf_quantization_config(j);
  // vLLM's online form: a quantization_config holding only the torchao quant_type.
  if (j.contains("quant_type")) return parse_torchao_quantization_config(j);
  if (j.json().size() == 1 && j.contains("default"))
    return parse_torchao_config(j.member("default"));
  if (allow_overrides &&
      (j.contains("quantization_config") || j.contains("quantization_config_dict_json"))) {
    // vLLM hf_overrides: only its quantization part means anything to fp8llm.
    only_keys(j, {"quantization_config", "quantization_config_dict_json"}, "hf_overrides");
    if (j.json().size() != 1)
      j.fail("gives both quantization_config and quantization_config_dict_json; give one");
    if (j.contains("quantization_config"))
      return parse_config(j.member("quantization_config"), false);
    const JsonView text = j.member("quantization_config_dict_json");
    if (!text.json().is_string())
      text.fail("expected the config as a JSON string (got {})", show(text));
    const json inner = parse_json(text.as_string(), text);
    return parse_config(JsonView(inner, text.file(), text.path()), false);
  }
  std::string keys;
  for (const auto& [k, v] : j.json().items())
    keys += fmt::format("{}\"{}\"", keys.empty() ? "" : ", ", k);
  j.fail(
      "not a quantization config (keys: {}): expected a torchao config {{\"_type\": ..., "
      "\"_data\": ...}}, a quantization_config {{\"quant_method\": ...}} or vLLM hf_overrides "
      "{{\"quantization_config\": ...}}",
      keys.empty() ? "none" : keys);
}

}  // namespace

QuantizationRequest parse_quantization_request(std::string_view json_text,
                                               const std::string& source) {
  const json doc = parse_json(json_text, JsonView(json(), source));
  return parse_config(JsonView(doc, source), true);
}

Quantization quantization_mode(const QuantizationRequest& request) {
  return quantization_of(request.scheme);
}

Quantization quantization_with_request(Quantization quantization,
                                       const QuantizationRequest& request) {
  const Quantization mode = quantization_mode(request);
  if (quantization == Quantization::Auto || quantization == mode) return mode;
  fail(
      "--quantization {} and --quantization-config ({}, i.e. {}) disagree; give one of them, or "
      "the same mode in both",
      to_string(quantization), request.description, to_string(mode));
}

}  // namespace fp8llm
