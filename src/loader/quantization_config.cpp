#include "loader/quantization_config.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/json_view.h"

namespace fp8llm {
namespace {

using nlohmann::json;

// Errors read "<source>: quantization_config.<path>: <what is wrong>" (JsonView::fail); an
// absent member reads as null (JsonView::member).

std::string show(const JsonView& v) {
  return v.json().dump();
}

std::vector<std::string> string_list(const JsonView& v) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (!v.json().is_array()) v.fail("must be a list of module names (got {})", show(v));
  for (const auto& e : v.json()) {
    if (!e.is_string()) v.fail("must be a list of module names (got {})", show(v));
    out.push_back(e.get<std::string>());
  }
  return out;
}

bool is_block_128(const json& j) {
  return j.is_array() && j.size() == 2 && j[0] == 128 && j[1] == 128;
}

PrequantConfig parse_fine_grained(const JsonView& qc) {
  PrequantConfig c;
  c.format = PrequantFormat::FineGrainedFp8;
  c.scheme = Fp8Scheme::Block;
  const JsonView fmt_field = qc.member("fmt");
  if (!fmt_field.is_null() && fmt_field.json() != "e4m3")
    fmt_field.fail("{} is not supported (only e4m3)", show(fmt_field));
  const JsonView bs = qc.member("weight_block_size");
  if (!is_block_128(bs.json())) {
    bs.fail("{} is not supported (only [128, 128], the fine-grained block layout)", show(bs));
  }
  const JsonView act = qc.member("activation_scheme");
  if (!act.is_null() && act.json() != "dynamic" && act.json() != "static")
    act.fail("{} is not one of dynamic, static", show(act));
  c.static_activation_scales = act.json() == "static";
  c.ignore = string_list(qc.member("modules_to_not_convert"));
  c.description = "fine-grained fp8, block 128x128";
  return c;
}

void check_float8(const JsonView& args) {
  if (!args.json().is_object()) args.fail("expected an object (got {})", show(args));
  const JsonView bits = args.member("num_bits");
  const JsonView type = args.member("type");
  if (bits.json() != 8 || type.json() != "float") {
    args.fail("num_bits {} type {} is not supported (only 8-bit float, i.e. FP8 e4m3)", show(bits),
              show(type));
  }
  const JsonView sym = args.member("symmetric");
  if (!sym.is_null() && sym.json() != true) sym.fail("{} is not supported (only true)", show(sym));
}

PrequantConfig parse_compressed_tensors(const JsonView& qc) {
  PrequantConfig c;
  c.format = PrequantFormat::CompressedTensors;
  const JsonView format = qc.member("format");
  if (format.json() != "float-quantized" && format.json() != "naive-quantized") {
    format.fail("{} is not supported (float-quantized or naive-quantized FP8 is read)",
                show(format));
  }
  const JsonView status = qc.member("quantization_status");
  if (!status.is_null() && status.json() != "compressed") {
    status.fail("{} is not supported (only compressed: the weights stored as FP8)", show(status));
  }
  const JsonView kv = qc.member("kv_cache_scheme");
  if (!kv.is_null()) kv.fail("{} is not supported (the KV cache is fp32)", show(kv));
  const JsonView sparsity = qc.member("sparsity_config");
  if (!sparsity.is_null() && !sparsity.json().empty())
    sparsity.fail("sparse checkpoints are not supported");
  const JsonView groups = qc.member("config_groups");
  if (!groups.json().is_object() || groups.json().empty())
    groups.fail("expected a non-empty object (got {})", show(groups));

  std::optional<JsonView> weights0;
  std::string group0;
  for (const auto& [name, value] : groups.json().items()) {
    const JsonView group = groups.child(name, value);
    if (!value.is_object()) group.fail("expected an object");
    const JsonView weights = group.member("weights");
    check_float8(weights);
    const JsonView dyn = weights.member("dynamic");
    if (!dyn.is_null() && dyn.json() != false)
      dyn.fail("{} is not supported (weights must be stored quantized)", show(dyn));
    const JsonView oa = group.member("output_activations");
    if (!oa.is_null()) oa.fail("output quantization is not supported");
    const JsonView ia = group.member("input_activations");
    if (!ia.is_null()) {
      check_float8(ia);
      const JsonView ia_dyn = ia.member("dynamic");
      if (!ia_dyn.json().is_boolean() && !ia_dyn.is_null())
        ia_dyn.fail("{} is not supported", show(ia_dyn));
      if (ia_dyn.json() == false) c.static_activation_scales = true;
    }
    if (!weights0) {
      weights0 = weights;
      group0 = group.path();
    } else if (weights.member("strategy").json() != weights0->member("strategy").json() ||
               weights.member("block_structure").json() !=
                   weights0->member("block_structure").json()) {
      weights.fail("a weight strategy different from {}'s is not supported", group0);
    }
  }
  const JsonView strategy = weights0->member("strategy");
  if (strategy.json() == "channel") {
    c.scheme = Fp8Scheme::Row;
    c.description = "compressed-tensors fp8, per channel";
  } else if (strategy.json() == "tensor") {
    c.scheme = Fp8Scheme::Row;
    c.per_tensor_weight_scale = true;
    c.description = "compressed-tensors fp8, per tensor";
  } else if (strategy.json() == "block") {
    const JsonView bs = weights0->member("block_structure");
    if (!is_block_128(bs.json())) bs.fail("{} is not supported (only [128, 128])", show(bs));
    c.scheme = Fp8Scheme::Block;
    c.description = "compressed-tensors fp8, block 128x128";
  } else {
    strategy.fail("{} is not supported (channel, tensor or block)", show(strategy));
  }
  c.ignore = string_list(qc.member("ignore"));
  return c;
}

}  // namespace

std::string PrequantConfig::scale_name(std::string_view weight_name) const {
  if (format == PrequantFormat::FineGrainedFp8) return fmt::format("{}_scale_inv", weight_name);
  return fmt::format("{}_scale", weight_name);
}

PrequantConfig parse_quantization_config(const json& qc, const std::string& source) {
  const JsonView v(qc, source, "quantization_config");
  if (!qc.is_object()) v.fail("expected an object (got {})", show(v));
  const JsonView method = v.member("quant_method");
  if (method.json() == "fp8") return parse_fine_grained(v);
  if (method.json() == "compressed-tensors") return parse_compressed_tensors(v);
  method.fail(
      "{} is not supported: fp8llm reads FP8 checkpoints in the fine-grained \"fp8\" layout "
      "(weight_block_size [128, 128]) and compressed-tensors float-quantized FP8; use the BF16 "
      "original otherwise",
      show(method));
}

json quantization_config_for(Fp8Scheme scheme) {
  if (scheme == Fp8Scheme::Block) {
    return json{{"quant_method", "fp8"},
                {"fmt", "e4m3"},
                {"activation_scheme", "dynamic"},
                {"weight_block_size", {128, 128}}};
  }
  const json weights{{"num_bits", 8},
                     {"type", "float"},
                     {"strategy", "channel"},
                     {"symmetric", true},
                     {"dynamic", false},
                     {"group_size", nullptr},
                     {"block_structure", nullptr},
                     {"actorder", nullptr},
                     {"observer", "minmax"}};
  const json activations{{"num_bits", 8},
                         {"type", "float"},
                         {"strategy", "token"},
                         {"symmetric", true},
                         {"dynamic", true},
                         {"group_size", nullptr},
                         {"block_structure", nullptr},
                         {"actorder", nullptr},
                         {"observer", nullptr}};
  return json{{"quant_method", "compressed-tensors"},
              {"format", "float-quantized"},
              {"quantization_status", "compressed"},
              {"config_groups",
               {{"group_0",
                 {{"targets", {"Linear"}},
                  {"weights", weights},
                  {"input_activations", activations},
                  {"output_activations", nullptr}}}}},
              {"ignore", {"lm_head"}},
              {"kv_cache_scheme", nullptr}};
}

}  // namespace fp8llm
