#include "loader/quantization_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/error.h"
#include "loader/load_plan.h"

namespace fp8llm {
namespace {

using nlohmann::json;

std::string show(const json& j) {
  return j.dump();
}

const json& field(const json& obj, std::string_view key) {
  static const json null_value;
  auto it = obj.find(key);
  return it == obj.end() ? null_value : *it;
}

// Where a value sits in the request: errors read "<source>: <json path>: <what is wrong>".
struct Where {
  const std::string& source;
  std::string path;

  Where key(std::string_view k) const {
    return {source, path.empty() ? std::string(k) : fmt::format("{}.{}", path, k)};
  }
  Where index(size_t i) const { return {source, fmt::format("{}[{}]", path, i)}; }

  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) const {
    const std::string what = fmt::format(f, std::forward<Args>(args)...);
    if (path.empty()) ::fp8llm::fail("{}: {}", source, what);
    ::fp8llm::fail("{}: {}: {}", source, path, what);
  }
};

bool one_of(const json& j, std::initializer_list<std::string_view> names) {
  return j.is_string() &&
         std::find(names.begin(), names.end(), j.get_ref<const std::string&>()) != names.end();
}

// A key not listed is refused rather than skipped: fp8llm cannot know it leaves the numerics alone.
void only_keys(const json& obj, const Where& w, std::initializer_list<std::string_view> known,
               std::string_view what) {
  for (const auto& [k, v] : obj.items()) {
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    std::string list;
    for (std::string_view n : known) list += fmt::format("{}{}", list.empty() ? "" : ", ", n);
    w.key(k).fail("not a known field of {} (known: {}); refused, as it could change the numerics",
                  what, list);
  }
}

const json& object_at(const json& obj, std::string_view key, const Where& w) {
  const json& v = field(obj, key);
  if (!v.is_object()) w.key(key).fail("expected an object (got {})", show(v));
  return v;
}

void expect_null_or_false(const json& obj, std::string_view key, const Where& w,
                          std::string_view why) {
  const json& v = field(obj, key);
  if (!v.is_null() && v != false) w.key(key).fail("{} is not supported ({})", show(v), why);
}

void expect_bool_or_null(const json& obj, std::string_view key, const Where& w) {
  const json& v = field(obj, key);
  if (!v.is_null() && !v.is_boolean()) w.key(key).fail("expected true or false (got {})", show(v));
}

void expect_empty(const json& obj, std::string_view key, const Where& w, std::string_view why) {
  const json& v = field(obj, key);
  if (!v.is_null() && !(v.is_object() && v.empty()))
    w.key(key).fail("{} is not supported ({})", show(v), why);
}

// Module lists of projections to leave unquantized: only the modules fp8llm never quantizes
// anyway (lm_head, the embeddings) may be named.
void expect_kept_modules_only(const json& obj, std::string_view key, const Where& w) {
  const json& v = field(obj, key);
  if (v.is_null()) return;
  if (!v.is_array()) w.key(key).fail("expected a list of module names (got {})", show(v));
  for (size_t i = 0; i < v.size(); ++i) {
    const json& m = v[i];
    if (!m.is_string()) w.key(key).index(i).fail("expected a module name (got {})", show(m));
    const std::string& name = m.get_ref<const std::string&>();
    if (!name.ends_with("lm_head") && !name.ends_with("embed_tokens")) {
      w.key(key).index(i).fail(
          "leaving {} unquantized is not supported (fp8llm quantizes every decoder projection; "
          "only lm_head and embed_tokens, which it never quantizes, may be listed)",
          show(m));
    }
  }
}

// ---- torchao -------------------------------------------------------------------------------

// A value config_to_dict writes as {"_type": <type>, "_data": <name>} (enums, torch dtypes).
std::string tagged_name(const json& j, const Where& w, std::string_view type) {
  if (!j.is_object() || field(j, "_type") != type || !field(j, "_data").is_string()) {
    w.fail("expected {{\"_type\": \"{}\", \"_data\": <name>}} as config_to_dict writes it (got {})",
           type, show(j));
  }
  only_keys(j, w, {"_type", "_data"}, type);
  return j["_data"].get<std::string>();
}

void expect_e4m3(const json& data, std::string_view key, const Where& w) {
  const json& v = field(data, key);
  if (v.is_null()) return;  // torchao's default: float8_e4m3fn
  const std::string name = tagged_name(v, w.key(key), "torch.dtype");
  if (name != "float8_e4m3fn") w.key(key).fail("{} is not supported (only float8_e4m3fn)", name);
}

enum class GranularityRole { Both, Activation, Weight };

// One granularity object; returns "PerRow" or "PerBlock" after checking its fields.
std::string granularity_kind(const json& g, const Where& w, GranularityRole role) {
  if (!g.is_object() || !field(g, "_type").is_string()) {
    w.fail(
        "expected a granularity as config_to_dict writes it ({{\"_type\": \"PerRow\", "
        "\"_version\": 1, \"_data\": {{\"dim\": -1}}}}), got {}",
        show(g));
  }
  only_keys(g, w, {"_type", "_version", "_data"}, "a granularity");
  const std::string type = g["_type"].get<std::string>();
  const json& version = field(g, "_version");
  if (!version.is_null() && version != 1)
    w.key("_version").fail("{} is not supported (granularities are version 1)", show(version));
  const json& data = field(g, "_data");
  if (!data.is_null() && !data.is_object())
    w.key("_data").fail("expected an object (got {})", show(data));
  const json fields = data.is_null() ? json::object() : data;
  const Where wd = w.key("_data");
  if (type == "PerRow") {
    only_keys(fields, wd, {"dim"}, "PerRow");
    const json& dim = field(fields, "dim");
    if (!dim.is_null() && dim != -1)
      wd.key("dim").fail("{} is not supported (only -1: one scale per row)", show(dim));
    return type;
  }
  if (type == "PerBlock") {
    only_keys(fields, wd, {"block_size"}, "PerBlock");
    if (role == GranularityRole::Both) {
      w.fail(
          "a single PerBlock is not supported: give the pair [PerBlock([1, 128]), "
          "PerBlock([128, 128])] (activations, weights)");
    }
    const bool activation = role == GranularityRole::Activation;
    const json want = activation ? json::array({1, 128}) : json::array({128, 128});
    const json& size = field(fields, "block_size");
    if (size != want) {
      wd.key("block_size")
          .fail("{} is not supported for the {} (only {}: {})", show(size),
                activation ? "activations" : "weights", show(want),
                activation ? "one scale per token per 128 columns" : "128x128 weight tiles");
    }
    return type;
  }
  w.fail("{} is not supported (use PerRow or PerBlock)", type);
}

struct Granularity {
  Fp8Scheme scheme;
  std::string description;
};

Granularity parse_granularity(const json& g, const Where& w) {
  if (g.is_null()) {
    w.fail(
        "absent, which torchao reads as PerTensor; PerTensor is not supported (use PerRow or "
        "PerBlock)");
  }
  if (g.is_object()) {
    granularity_kind(g, w, GranularityRole::Both);  // only PerRow gets through
    return {Fp8Scheme::Row, "PerRow"};
  }
  if (!g.is_array() || g.size() != 2)
    w.fail("expected one granularity or the pair [activation, weight] (got {})", show(g));
  const std::string a = granularity_kind(g[0], w.index(0), GranularityRole::Activation);
  const std::string b = granularity_kind(g[1], w.index(1), GranularityRole::Weight);
  if (a == "PerRow" && b == "PerRow") return {Fp8Scheme::Row, "[PerRow, PerRow]"};
  if (a == "PerBlock" && b == "PerBlock")
    return {Fp8Scheme::Block, "[PerBlock([1, 128]), PerBlock([128, 128])]"};
  w.fail(
      "[{}, {}] mixes granularities (use [PerRow, PerRow] or [PerBlock([1, 128]), "
      "PerBlock([128, 128])])",
      a, b);
}

void check_mm_config(const json& v, const Where& w) {
  if (v.is_null()) return;
  if (!v.is_object() || field(v, "_type") != "Float8MMConfig")
    w.fail("expected a Float8MMConfig as config_to_dict writes it (got {})", show(v));
  only_keys(v, w, {"_type", "_version", "_data"}, "Float8MMConfig");
  const json& data = object_at(v, "_data", w);
  only_keys(data, w.key("_data"), {"emulate", "use_fast_accum", "pad_inner_dim"}, "Float8MMConfig");
  for (const char* k : {"emulate", "use_fast_accum", "pad_inner_dim"})
    expect_bool_or_null(data, k, w.key("_data"));
}

QuantizationRequest parse_torchao_config(const json& j, const Where& w) {
  if (!j.is_object())
    w.fail("expected a torchao config object {{\"_type\": ..., \"_data\": ...}} (got {})", show(j));
  only_keys(j, w, {"_type", "_version", "_data"}, "a torchao config");
  const json& type = field(j, "_type");
  if (!type.is_string()) w.key("_type").fail("expected the config class name (got {})", show(type));
  const std::string t = type.get<std::string>();
  if (t == "FqnToConfig" || t == "ModuleFqnToConfig") {
    w.key("_type").fail(
        "{} (per-module configs) is not supported: pass the "
        "Float8DynamicActivationFloat8WeightConfig itself, applied to every "
        "projection",
        t);
  }
  if (t != "Float8DynamicActivationFloat8WeightConfig") {
    w.key("_type").fail(
        "{} is not supported (only Float8DynamicActivationFloat8WeightConfig: float8_e4m3fn "
        "weights and dynamically quantized float8_e4m3fn activations)",
        t);
  }
  const json& version = field(j, "_version");
  if (!version.is_null() && version != 1 && version != 2)
    w.key("_version").fail("{} is not supported (versions 1 and 2 are read)", show(version));

  const json& data = object_at(j, "_data", w);
  const Where wd = w.key("_data");
  only_keys(data, wd,
            {"activation_dtype", "weight_dtype", "granularity", "packing_format", "mm_config",
             "activation_value_lb", "activation_value_ub", "kernel_preference",
             "set_inductor_config", "alg_id"},
            t);
  expect_e4m3(data, "activation_dtype", wd);
  expect_e4m3(data, "weight_dtype", wd);
  const Granularity g = parse_granularity(field(data, "granularity"), wd.key("granularity"));
  if (const json& p = field(data, "packing_format"); !p.is_null()) {
    const std::string name = tagged_name(p, wd.key("packing_format"), "Float8PackingFormat");
    if (name != "PLAIN")
      wd.key("packing_format").fail("{} is not supported (only PLAIN: dense weights)", name);
  }
  check_mm_config(field(data, "mm_config"), wd.key("mm_config"));
  for (const char* k : {"activation_value_lb", "activation_value_ub"}) {
    const json& v = field(data, k);
    if (!v.is_null()) {
      wd.key(k).fail(
          "{} is not supported (it clamps the activation amax; fp8llm's activation scales are "
          "amax * float32(1/448) of the amax itself: use null)",
          show(v));
    }
  }
  if (const json& k = field(data, "kernel_preference"); !k.is_null()) {
    const std::string name = tagged_name(k, wd.key("kernel_preference"), "KernelPreference");
    if (!one_of(json(name),
                {"AUTO", "TORCH", "FBGEMM", "MSLK", "EMULATED", "DEEPGEMM", "TRITON", "CUTEDSL"}))
      wd.key("kernel_preference").fail("{} is not a KernelPreference", name);
  }
  expect_bool_or_null(data, "set_inductor_config", wd);
  if (const json& a = field(data, "alg_id"); !a.is_null() && !a.is_number_integer())
    wd.key("alg_id").fail("expected an integer (got {})", show(a));
  return {g.scheme, fmt::format("torchao {}, granularity {}", t, g.description)};
}

// transformers' TorchAoConfig.to_dict(), the quantization_config of a torchao checkpoint.
QuantizationRequest parse_torchao_quantization_config(const json& j, const Where& w) {
  only_keys(j, w,
            {"quant_method", "quant_type", "quant_type_kwargs", "modules_to_not_convert",
             "include_input_output_embeddings", "include_embedding", "untie_embedding_weights"},
            "a torchao quantization_config");
  const json& qt = field(j, "quant_type");
  const Where wq = w.key("quant_type");
  if (qt.is_string()) {
    wq.fail(
        "{} is a legacy string quant type; give the config as config_to_dict writes it "
        "({{\"default\": {{\"_type\": \"Float8DynamicActivationFloat8WeightConfig\", ...}}}})",
        show(qt));
  }
  if (!qt.is_object() || !qt.contains("default"))
    wq.fail("expected {{\"default\": <torchao config>}} (got {})", show(qt));
  for (const auto& [k, v] : qt.items()) {
    if (k != "default")
      wq.key(k).fail(
          "per-module configs are not supported (only \"default\", for every projection)");
  }
  expect_empty(j, "quant_type_kwargs", w, "it only applies to string quant types");
  expect_kept_modules_only(j, "modules_to_not_convert", w);
  for (const char* k : {"include_input_output_embeddings", "include_embedding"})
    expect_null_or_false(j, k, w,
                         "fp8llm keeps the embeddings and lm_head in the checkpoint dtype");
  expect_bool_or_null(j, "untie_embedding_weights", w);
  return parse_torchao_config(qt.at("default"), wq.key("default"));
}

// ---- fine-grained fp8 ------------------------------------------------------------------------

QuantizationRequest parse_fp8(const json& j, const Where& w) {
  only_keys(j, w,
            {"quant_method", "fmt", "activation_scheme", "weight_block_size",
             "modules_to_not_convert", "ignored_layers", "dequantize"},
            "an fp8 quantization_config");
  if (const json& f = field(j, "fmt"); !f.is_null() && f != "e4m3")
    w.key("fmt").fail("{} is not supported (only e4m3)", show(f));
  const json& act = field(j, "activation_scheme");
  if (act == "static") {
    w.key("activation_scheme")
        .fail(
            "\"static\" is not supported (static scales come from calibration; fp8llm "
            "quantizes activations dynamically: use \"dynamic\")");
  }
  if (!act.is_null() && act != "dynamic")
    w.key("activation_scheme").fail("{} is not supported (only \"dynamic\")", show(act));
  const json& bs = field(j, "weight_block_size");
  if (bs.is_null()) {
    w.key("weight_block_size")
        .fail(
            "absent, which means one scale per weight tensor; per-tensor FP8 is not supported "
            "(use [128, 128])");
  }
  if (bs != json::array({128, 128}))
    w.key("weight_block_size").fail("{} is not supported (only [128, 128])", show(bs));
  expect_kept_modules_only(j, "modules_to_not_convert", w);
  expect_kept_modules_only(j, "ignored_layers", w);
  expect_null_or_false(j, "dequantize", w,
                       "it loads the weights unquantized: use --quantization none");
  return {Fp8Scheme::Block, "fp8, weight_block_size [128, 128]"};
}

// ---- compressed-tensors ----------------------------------------------------------------------

void check_float8_args(const json& a, const Where& w) {
  only_keys(a, w,
            {"num_bits", "type", "symmetric", "group_size", "strategy", "block_structure",
             "dynamic", "actorder", "observer", "observer_kwargs", "scale_dtype", "zp_dtype"},
            "compressed-tensors quantization args");
  const json& bits = field(a, "num_bits");
  const json& type = field(a, "type");
  if (bits != 8 || type != "float") {
    w.fail("num_bits {} type {} is not supported (only 8-bit float, i.e. float8_e4m3fn)",
           show(bits), show(type));
  }
  if (const json& s = field(a, "symmetric"); !s.is_null() && s != true)
    w.key("symmetric").fail("{} is not supported (only true)", show(s));
  expect_null_or_false(a, "actorder", w, "activation ordering belongs to GPTQ");
  expect_empty(a, "observer_kwargs", w, "fp8llm's scales take no observer options");
  if (const json& s = field(a, "scale_dtype"); !s.is_null() && s != "torch.float32")
    w.key("scale_dtype").fail("{} is not supported (scales are float32)", show(s));
  if (const json& z = field(a, "zp_dtype"); !z.is_null())
    w.key("zp_dtype").fail("{} is not supported (symmetric scales have no zero point)", show(z));
}

QuantizationRequest parse_compressed_tensors(const json& j, const Where& w) {
  only_keys(j, w,
            {"quant_method", "format", "quantization_status", "global_compression_ratio", "version",
             "config_groups", "ignore", "kv_cache_scheme", "sparsity_config", "transform_config"},
            "a compressed-tensors quantization_config");
  if (const json& f = field(j, "format");
      !f.is_null() && !one_of(f, {"float-quantized", "naive-quantized"}))
    w.key("format").fail("{} is not supported (float-quantized or naive-quantized)", show(f));
  if (const json& kv = field(j, "kv_cache_scheme"); !kv.is_null())
    w.key("kv_cache_scheme").fail("{} is not supported (the KV cache is not quantized)", show(kv));
  expect_empty(j, "sparsity_config", w, "sparse weights");
  expect_empty(j, "transform_config", w, "transforms such as rotations");
  expect_kept_modules_only(j, "ignore", w);

  const json& groups = object_at(j, "config_groups", w);
  const Where wg = w.key("config_groups");
  if (groups.size() != 1) {
    wg.fail(
        "{} groups are not supported (one group, targets [\"Linear\"], applied to every "
        "projection)",
        groups.size());
  }
  // (Not items(): its proxies are temporaries, and a reference to their key would dangle.)
  const json::const_iterator first = groups.begin();
  const std::string name = first.key();
  const json& group = first.value();
  const Where g = wg.key(name);
  if (!group.is_object()) g.fail("expected an object (got {})", show(group));
  only_keys(group, g, {"targets", "weights", "input_activations", "output_activations", "format"},
            "a compressed-tensors config group");
  if (const json& t = field(group, "targets"); t != json::array({"Linear"}))
    g.key("targets").fail("{} is not supported (only [\"Linear\"]: every projection)", show(t));
  if (const json& f = field(group, "format");
      !f.is_null() && !one_of(f, {"float-quantized", "naive-quantized"}))
    g.key("format").fail("{} is not supported (float-quantized or naive-quantized)", show(f));
  if (const json& o = field(group, "output_activations"); !o.is_null())
    g.key("output_activations").fail("{} is not supported (outputs are not quantized)", show(o));

  const json& weights = object_at(group, "weights", g);
  const Where ww = g.key("weights");
  check_float8_args(weights, ww);
  expect_null_or_false(weights, "dynamic", ww, "weights are quantized once, when they load");
  if (const json& obs = field(weights, "observer");
      !obs.is_null() &&
      !one_of(obs, {"minmax", "memoryless_minmax", "static_minmax", "memoryless"}))
    ww.key("observer")
        .fail(
            "{} is not supported (fp8llm's weight scales come from the amax: "
            "minmax)",
            show(obs));
  const json& strategy = field(weights, "strategy");
  Fp8Scheme scheme = Fp8Scheme::Row;
  if (strategy == "channel") {
    if (const json& gs = field(weights, "group_size"); !gs.is_null() && gs != -1)
      ww.key("group_size").fail("{} is not supported with strategy channel", show(gs));
  } else if (strategy == "block") {
    scheme = Fp8Scheme::Block;
    if (const json& bs = field(weights, "block_structure"); bs != json::array({128, 128}))
      ww.key("block_structure").fail("{} is not supported (only [128, 128])", show(bs));
  } else {
    ww.key("strategy")
        .fail("{} is not supported (channel -> fp8-row, block -> fp8-block)", show(strategy));
  }

  const json& ia = field(group, "input_activations");
  const Where wa = g.key("input_activations");
  if (ia.is_null()) {
    wa.fail(
        "absent: weight-only FP8 is not supported (fp8llm quantizes activations "
        "dynamically; give {{\"dynamic\": true, \"strategy\": \"{}\"}})",
        scheme == Fp8Scheme::Row ? "token" : "group");
  }
  if (!ia.is_object()) wa.fail("expected an object (got {})", show(ia));
  check_float8_args(ia, wa);
  if (const json& d = field(ia, "dynamic"); d != true) {
    wa.key("dynamic").fail(
        "{} is not supported (static activation scales come from calibration; "
        "fp8llm computes them at run time: use true)",
        show(d));
  }
  const json& as = field(ia, "strategy");
  if (scheme == Fp8Scheme::Row && as != "token") {
    wa.key("strategy").fail("{} is not supported with channel weights (only \"token\")", show(as));
  }
  if (scheme == Fp8Scheme::Block && (as != "group" || field(ia, "group_size") != 128)) {
    wa.key("strategy")
        .fail("{} with group_size {} is not supported with block weights (only \"group\", 128)",
              show(as), show(field(ia, "group_size")));
  }
  return {scheme, scheme == Fp8Scheme::Row
                      ? "compressed-tensors fp8, channel weights, dynamic per-token activations"
                      : "compressed-tensors fp8, block 128x128 weights, dynamic 1x128 activations"};
}

// ---- dispatch ----------------------------------------------------------------------------------

QuantizationRequest parse_hf_quantization_config(const json& j, const Where& w) {
  const json& method = field(j, "quant_method");
  if (method == "torchao") return parse_torchao_quantization_config(j, w);
  if (method == "fp8") return parse_fp8(j, w);
  if (method == "compressed-tensors") return parse_compressed_tensors(j, w);
  w.key("quant_method")
      .fail("{} is not supported (torchao, fp8 or compressed-tensors FP8 configs are read)",
            show(method));
}

json parse_json(std::string_view text, const Where& w) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    w.fail("not valid JSON ({})", e.what());
  }
}

QuantizationRequest parse_config(const json& j, const Where& w, bool allow_overrides) {
  if (!j.is_object()) w.fail("expected a JSON object (got {})", show(j));
  if (j.contains("_type")) return parse_torchao_config(j, w);
  if (j.contains("quant_method")) return parse_hf_quantization_config(j, w);
  // vLLM's online form: a quantization_config holding only the torchao quant_type.
  if (j.contains("quant_type")) return parse_torchao_quantization_config(j, w);
  if (j.size() == 1 && j.contains("default"))
    return parse_torchao_config(j.at("default"), w.key("default"));
  if (allow_overrides &&
      (j.contains("quantization_config") || j.contains("quantization_config_dict_json"))) {
    // vLLM hf_overrides: only its quantization part means anything to fp8llm.
    only_keys(j, w, {"quantization_config", "quantization_config_dict_json"}, "hf_overrides");
    if (j.size() != 1)
      w.fail("gives both quantization_config and quantization_config_dict_json; give one");
    if (j.contains("quantization_config"))
      return parse_config(j.at("quantization_config"), w.key("quantization_config"), false);
    const json& text = j.at("quantization_config_dict_json");
    const Where wt = w.key("quantization_config_dict_json");
    if (!text.is_string()) wt.fail("expected the config as a JSON string (got {})", show(text));
    return parse_config(parse_json(text.get<std::string>(), wt), wt, false);
  }
  std::string keys;
  for (const auto& [k, v] : j.items()) keys += fmt::format("{}\"{}\"", keys.empty() ? "" : ", ", k);
  w.fail(
      "not a quantization config (keys: {}): expected a torchao config {{\"_type\": ..., "
      "\"_data\": ...}}, a quantization_config {{\"quant_method\": ...}} or vLLM hf_overrides "
      "{{\"quantization_config\": ...}}",
      keys.empty() ? "none" : keys);
}

}  // namespace

QuantizationRequest parse_quantization_request(std::string_view json_text,
                                               const std::string& source) {
  const Where root{source, ""};
  return parse_config(parse_json(json_text, root), root, true);
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
