#include "loader/quantization_config.h"

#include <fmt/format.h>

#include "core/error.h"

namespace fp8llm {
namespace {

using nlohmann::json;

std::string show(const json& j) {
  return j.is_null() ? "null" : j.dump();
}

// A field of `obj` (null when absent), with `path` naming it in errors.
const json& field(const json& obj, const char* key) {
  static const json null_value;
  auto it = obj.find(key);
  return it == obj.end() ? null_value : *it;
}

std::vector<std::string> string_list(const json& j, const std::string& where) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  FP8LLM_CHECK(j.is_array(), "{}: must be a list of module names (got {})", where, show(j));
  for (const auto& e : j) {
    FP8LLM_CHECK(e.is_string(), "{}: must be a list of module names (got {})", where, show(j));
    out.push_back(e.get<std::string>());
  }
  return out;
}

bool is_block_128(const json& j) {
  return j.is_array() && j.size() == 2 && j[0] == 128 && j[1] == 128;
}

PrequantConfig parse_fine_grained(const json& qc, const std::string& where) {
  PrequantConfig c;
  c.format = PrequantFormat::FineGrainedFp8;
  c.scheme = Fp8Scheme::Block;
  const json& fmt_field = field(qc, "fmt");
  FP8LLM_CHECK(fmt_field.is_null() || fmt_field == "e4m3",
               "{}.fmt: {} is not supported (only e4m3)", where, show(fmt_field));
  const json& bs = field(qc, "weight_block_size");
  FP8LLM_CHECK(is_block_128(bs),
               "{}.weight_block_size: {} is not supported (only [128, 128], the fine-grained "
               "block layout)",
               where, show(bs));
  const json& act = field(qc, "activation_scheme");
  FP8LLM_CHECK(act.is_null() || act == "dynamic" || act == "static",
               "{}.activation_scheme: {} is not one of dynamic, static", where, show(act));
  c.static_activation_scales = act == "static";
  c.ignore = string_list(field(qc, "modules_to_not_convert"), where + ".modules_to_not_convert");
  c.description = "fine-grained fp8, block 128x128";
  return c;
}

void check_float8(const json& args, const std::string& where) {
  FP8LLM_CHECK(args.is_object(), "{}: expected an object (got {})", where, show(args));
  const json& bits = field(args, "num_bits");
  const json& type = field(args, "type");
  FP8LLM_CHECK(bits == 8 && type == "float",
               "{}: num_bits {} type {} is not supported (only 8-bit float, i.e. FP8 e4m3)", where,
               show(bits), show(type));
  const json& sym = field(args, "symmetric");
  FP8LLM_CHECK(sym.is_null() || sym == true, "{}.symmetric: {} is not supported (only true)", where,
               show(sym));
}

PrequantConfig parse_compressed_tensors(const json& qc, const std::string& where) {
  PrequantConfig c;
  c.format = PrequantFormat::CompressedTensors;
  const json& format = field(qc, "format");
  FP8LLM_CHECK(format == "float-quantized" || format == "naive-quantized",
               "{}.format: {} is not supported (float-quantized or naive-quantized FP8 is read)",
               where, show(format));
  const json& status = field(qc, "quantization_status");
  FP8LLM_CHECK(status.is_null() || status == "compressed",
               "{}.quantization_status: {} is not supported (only compressed: the weights stored "
               "as FP8)",
               where, show(status));
  const json& kv = field(qc, "kv_cache_scheme");
  FP8LLM_CHECK(kv.is_null(), "{}.kv_cache_scheme: {} is not supported (the KV cache is fp32)",
               where, show(kv));
  const json& sparsity = field(qc, "sparsity_config");
  FP8LLM_CHECK(sparsity.is_null() || sparsity.empty(),
               "{}.sparsity_config: sparse checkpoints are not supported", where);
  const json& groups = field(qc, "config_groups");
  FP8LLM_CHECK(groups.is_object() && !groups.empty(),
               "{}.config_groups: expected a non-empty object (got {})", where, show(groups));

  const json* weights0 = nullptr;
  std::string group0;
  for (const auto& [name, group] : groups.items()) {
    const std::string g = where + ".config_groups." + name;
    FP8LLM_CHECK(group.is_object(), "{}: expected an object", g);
    const json& weights = field(group, "weights");
    check_float8(weights, g + ".weights");
    const json& dyn = field(weights, "dynamic");
    FP8LLM_CHECK(dyn.is_null() || dyn == false,
                 "{}.weights.dynamic: {} is not supported (weights must be stored quantized)", g,
                 show(dyn));
    const json& oa = field(group, "output_activations");
    FP8LLM_CHECK(oa.is_null(), "{}.output_activations: output quantization is not supported", g);
    const json& ia = field(group, "input_activations");
    if (!ia.is_null()) {
      check_float8(ia, g + ".input_activations");
      const json& ia_dyn = field(ia, "dynamic");
      FP8LLM_CHECK(ia_dyn.is_boolean() || ia_dyn.is_null(),
                   "{}.input_activations.dynamic: {} is not supported", g, show(ia_dyn));
      if (ia_dyn == false) c.static_activation_scales = true;
    }
    if (weights0 == nullptr) {
      weights0 = &weights;
      group0 = g;
    } else {
      FP8LLM_CHECK(field(weights, "strategy") == field(*weights0, "strategy") &&
                       field(weights, "block_structure") == field(*weights0, "block_structure"),
                   "{}.weights: a weight strategy different from {}'s is not supported", g, group0);
    }
  }
  const json& strategy = field(*weights0, "strategy");
  if (strategy == "channel") {
    c.scheme = Fp8Scheme::Row;
    c.description = "compressed-tensors fp8, per channel";
  } else if (strategy == "tensor") {
    c.scheme = Fp8Scheme::Row;
    c.per_tensor_weight_scale = true;
    c.description = "compressed-tensors fp8, per tensor";
  } else if (strategy == "block") {
    const json& bs = field(*weights0, "block_structure");
    FP8LLM_CHECK(is_block_128(bs),
                 "{}.weights.block_structure: {} is not supported (only [128, 128])", group0,
                 show(bs));
    c.scheme = Fp8Scheme::Block;
    c.description = "compressed-tensors fp8, block 128x128";
  } else {
    fail("{}.weights.strategy: {} is not supported (channel, tensor or block)", group0,
         show(strategy));
  }
  c.ignore = string_list(field(qc, "ignore"), where + ".ignore");
  return c;
}

}  // namespace

std::string PrequantConfig::scale_name(std::string_view weight_name) const {
  if (format == PrequantFormat::FineGrainedFp8) return fmt::format("{}_scale_inv", weight_name);
  return fmt::format("{}_scale", weight_name);
}

PrequantConfig parse_quantization_config(const json& qc, const std::string& source) {
  const std::string where = source + ": quantization_config";
  FP8LLM_CHECK(qc.is_object(), "{}: expected an object (got {})", where, show(qc));
  const json& method = field(qc, "quant_method");
  if (method == "fp8") return parse_fine_grained(qc, where);
  if (method == "compressed-tensors") return parse_compressed_tensors(qc, where);
  fail(
      "{}.quant_method {} is not supported: fp8llm reads FP8 checkpoints in the fine-grained "
      "\"fp8\" layout (weight_block_size [128, 128]) and compressed-tensors float-quantized FP8; "
      "use the BF16 original otherwise",
      where, show(method));
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
