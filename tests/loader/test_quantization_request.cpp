// A requested quantization config (--quantization-config) maps to fp8-row or fp8-block in every
// form users paste: torchao's config_to_dict output as each torchao version writes it, bare or in
// the transformers / vLLM wrappers, and the fp8 and compressed-tensors quantization_configs.
// Everything that would change the numerics is refused with one line naming its JSON path.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "loader/quantization_config.h"
#include "loader/quantization_request.h"
#include "torchao_config.h"

namespace fp8llm::test {
namespace {

using nlohmann::json;

json dtype(const char* name) {
  return {{"_type", "torch.dtype"}, {"_data", name}};
}
json per_row() {
  return json::parse(R"({"_type": "PerRow", "_version": 1, "_data": {"dim": -1}})");
}
json per_block(int rows, int cols) {
  return torchao_per_block_granularity(rows, cols);
}
json per_tensor() {
  return json::parse(R"({"_type": "PerTensor", "_version": 1, "_data": {}})");
}

// torchao 0.16+ as config_to_dict writes it (torchao_config.h): PerRow, and the PerBlock pair.
json torchao_row() {
  return json::parse(kTorchaoPerRow);
}
json torchao_block() {
  return torchao_per_block();
}

QuantizationRequest parse(const json& j) {
  return parse_quantization_request(j.dump());
}

// The message of the Error `text` raises (one line), or "" when it parses.
std::string error_of_text(const std::string& text) {
  try {
    parse_quantization_request(text);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  return "";
}
std::string error_of(const json& j) {
  return error_of_text(j.dump());
}

// ---- accepted ---------------------------------------------------------------------------------

TEST(QuantizationRequest, TorchaoPerRowAsConfigToDictWritesIt) {
  const QuantizationRequest r = parse(torchao_row());
  EXPECT_EQ(r.scheme, Fp8Scheme::Row);
  EXPECT_EQ(r.description,
            "torchao Float8DynamicActivationFloat8WeightConfig, granularity [PerRow, PerRow]");
  EXPECT_EQ(quantization_mode(r), Quantization::Fp8Row);
}

TEST(QuantizationRequest, TorchaoPerBlockPairIsFp8Block) {
  const QuantizationRequest r = parse(torchao_block());
  EXPECT_EQ(r.scheme, Fp8Scheme::Block);
  EXPECT_EQ(r.description,
            "torchao Float8DynamicActivationFloat8WeightConfig, granularity [PerBlock([1, 128]), "
            "PerBlock([128, 128])]");
  EXPECT_EQ(quantization_mode(r), Quantization::Fp8Block);
}

TEST(QuantizationRequest, OlderTorchaoVersionsAndHandWrittenConfigs) {
  // torchao 0.13-0.15: no packing_format, no alg_id.
  json v013 = torchao_row();
  v013["_data"].erase("packing_format");
  v013["_data"].erase("alg_id");
  EXPECT_EQ(parse(v013).scheme, Fp8Scheme::Row);
  // torchao 0.10-0.11: version 1, the granularity kept as given, PerRow without fields.
  const json v010 = json::parse(R"({
    "_type": "Float8DynamicActivationFloat8WeightConfig", "_version": 1,
    "_data": {"activation_dtype": {"_type": "torch.dtype", "_data": "float8_e4m3fn"},
              "weight_dtype": {"_type": "torch.dtype", "_data": "float8_e4m3fn"},
              "granularity": {"_type": "PerRow", "_version": 1, "_data": {}},
              "mm_config": {"_type": "Float8MMConfig", "_version": 1,
                            "_data": {"emulate": false, "use_fast_accum": true,
                                      "pad_inner_dim": false}},
              "set_inductor_config": true}})");
  const QuantizationRequest r = parse(v010);
  EXPECT_EQ(r.scheme, Fp8Scheme::Row);
  EXPECT_EQ(r.description, "torchao Float8DynamicActivationFloat8WeightConfig, granularity PerRow");
  // Only what differs from torchao's defaults, written by hand; no _version.
  EXPECT_EQ(parse_quantization_request(R"({"_type": "Float8DynamicActivationFloat8WeightConfig",
      "_data": {"granularity": {"_type": "PerRow", "_data": {}}}})")
                .scheme,
            Fp8Scheme::Row);
}

TEST(QuantizationRequest, TorchaoWrappersOfTransformersAndVllm) {
  const json row = torchao_row();
  // The quant_type wrapper alone.
  EXPECT_EQ(parse(json{{"default", row}}).scheme, Fp8Scheme::Row);
  // transformers TorchAoConfig(quant_type=...).to_dict(), a checkpoint's quantization_config.
  const json hf{{"quant_method", "torchao"},
                {"quant_type", {{"default", torchao_block()}}},
                {"quant_type_kwargs", json::object()},
                {"modules_to_not_convert", nullptr},
                {"include_input_output_embeddings", false},
                {"untie_embedding_weights", false}};
  EXPECT_EQ(parse(hf).scheme, Fp8Scheme::Block);
  // vLLM hf_overrides={"quantization_config": ...}, with and without quant_method (the online
  // form vLLM reads without it).
  EXPECT_EQ(parse(json{{"quantization_config", hf}}).scheme, Fp8Scheme::Block);
  EXPECT_EQ(parse(json{{"quantization_config", {{"quant_type", {{"default", row}}}}}}).scheme,
            Fp8Scheme::Row);
  // vLLM hf_overrides={"quantization_config_dict_json": json.dumps(config_to_dict(config))}.
  const QuantizationRequest r = parse(json{{"quantization_config_dict_json", row.dump()}});
  EXPECT_EQ(r.scheme, Fp8Scheme::Row);
  EXPECT_EQ(r.description,
            "torchao Float8DynamicActivationFloat8WeightConfig, granularity [PerRow, PerRow]");
  // lm_head, which fp8llm never quantizes, may be listed as not converted.
  json keep = hf;
  keep["modules_to_not_convert"] = {"lm_head"};
  EXPECT_EQ(parse(keep).scheme, Fp8Scheme::Block);
}

TEST(QuantizationRequest, Fp8AndCompressedTensorsConfigs) {
  QuantizationRequest r =
      parse_quantization_request(R"({"quant_method": "fp8", "weight_block_size": [128, 128]})");
  EXPECT_EQ(r.scheme, Fp8Scheme::Block);
  EXPECT_EQ(r.description, "fp8, weight_block_size [128, 128]");
  // The fine-grained config fp8llm itself writes, and transformers' FineGrainedFP8Config.
  EXPECT_EQ(parse(quantization_config_for(Fp8Scheme::Block)).scheme, Fp8Scheme::Block);
  EXPECT_EQ(parse_quantization_request(
                R"({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                    "weight_block_size": [128, 128], "modules_to_not_convert": ["lm_head"],
                    "dequantize": false})")
                .scheme,
            Fp8Scheme::Block);
  // compressed-tensors: the channel-wise config fp8llm writes for fp8-row (llm-compressor's
  // FP8_DYNAMIC scheme).
  r = parse(quantization_config_for(Fp8Scheme::Row));
  EXPECT_EQ(r.scheme, Fp8Scheme::Row);
  EXPECT_EQ(r.description,
            "compressed-tensors fp8, channel weights, dynamic per-token activations");
  // llm-compressor's FP8_BLOCK scheme.
  r = parse_quantization_request(R"({"quant_method": "compressed-tensors",
      "format": "float-quantized", "quantization_status": "compressed", "version": "0.11.0",
      "config_groups": {"group_0": {"targets": ["Linear"],
        "weights": {"num_bits": 8, "type": "float", "symmetric": true, "strategy": "block",
                    "block_structure": [128, 128], "dynamic": false, "observer": "minmax"},
        "input_activations": {"num_bits": 8, "type": "float", "symmetric": true,
                              "strategy": "group", "group_size": 128, "dynamic": true,
                              "observer": null}}},
      "ignore": ["lm_head"], "kv_cache_scheme": null})");
  EXPECT_EQ(r.scheme, Fp8Scheme::Block);
  EXPECT_EQ(r.description,
            "compressed-tensors fp8, block 128x128 weights, dynamic 1x128 activations");
}

// ---- refused ----------------------------------------------------------------------------------

struct Bad {
  std::string name;
  json config;
  std::string message;  // the whole message
};

json with(json j, const json::json_pointer& at, const json& value) {
  j[at] = value;
  return j;
}
json without(json j, const std::string& key) {
  j["_data"].erase(key);
  return j;
}

class TorchaoErrors : public ::testing::TestWithParam<Bad> {};

TEST_P(TorchaoErrors, NameTheJsonPath) {
  EXPECT_EQ(error_of(GetParam().config), GetParam().message);
}

using P = json::json_pointer;
INSTANTIATE_TEST_SUITE_P(
    All, TorchaoErrors,
    ::testing::Values(
        Bad{"PerTensorPair",
            with(torchao_row(), P("/_data/granularity"), {per_tensor(), per_tensor()}),
            "quantization-config: _data.granularity[0]: PerTensor is not supported (use PerRow or "
            "PerBlock)"},
        Bad{"GranularityAbsent", without(torchao_row(), "granularity"),
            "quantization-config: _data.granularity: absent, which torchao reads as PerTensor; "
            "PerTensor is not supported (use PerRow or PerBlock)"},
        Bad{"PerTensorSingle", with(torchao_row(), P("/_data/granularity"), per_tensor()),
            "quantization-config: _data.granularity: PerTensor is not supported (use PerRow or "
            "PerBlock)"},
        Bad{"PerAxis",
            with(torchao_row(), P("/_data/granularity/1"),
                 {{"_type", "PerAxis"}, {"_version", 1}, {"_data", {{"axis", 0}}}}),
            "quantization-config: _data.granularity[1]: PerAxis is not supported (use PerRow or "
            "PerBlock)"},
        Bad{"SinglePerBlock", with(torchao_row(), P("/_data/granularity"), per_block(128, 128)),
            "quantization-config: _data.granularity: a single PerBlock is not supported: give the "
            "pair [PerBlock([1, 128]), PerBlock([128, 128])] (activations, weights)"},
        Bad{"ActivationBlock", with(torchao_block(), P("/_data/granularity/0"), per_block(1, 64)),
            "quantization-config: _data.granularity[0]._data.block_size: [1,64] is not supported "
            "for the activations (only [1,128]: one scale per token per 128 columns)"},
        Bad{"WeightBlock", with(torchao_block(), P("/_data/granularity/1"), per_block(64, 64)),
            "quantization-config: _data.granularity[1]._data.block_size: [64,64] is not supported "
            "for the weights (only [128,128]: 128x128 weight tiles)"},
        Bad{"Mixed", with(torchao_row(), P("/_data/granularity/1"), per_block(128, 128)),
            "quantization-config: _data.granularity: [PerRow, PerBlock] mixes granularities (use "
            "[PerRow, PerRow] or [PerBlock([1, 128]), PerBlock([128, 128])])"},
        Bad{"ThreeGranularities",
            with(torchao_row(), P("/_data/granularity"), {per_row(), per_row(), per_row()}),
            "quantization-config: _data.granularity: expected one granularity or the pair "
            "[activation, weight] (got " +
                json{per_row(), per_row(), per_row()}.dump() + ")"},
        Bad{"PerRowDim", with(torchao_row(), P("/_data/granularity/1/_data/dim"), 0),
            "quantization-config: _data.granularity[1]._data.dim: 0 is not supported (only -1: "
            "one scale per row)"},
        Bad{"GranularityNotTagged", with(torchao_row(), P("/_data/granularity"), "PerRow"),
            "quantization-config: _data.granularity: expected one granularity or the pair "
            "[activation, weight] (got \"PerRow\")"},
        Bad{"ActivationE5m2",
            with(torchao_row(), P("/_data/activation_dtype"), dtype("float8_e5m2")),
            "quantization-config: _data.activation_dtype: float8_e5m2 is not supported (only "
            "float8_e4m3fn)"},
        Bad{"WeightE5m2", with(torchao_row(), P("/_data/weight_dtype"), dtype("float8_e5m2")),
            "quantization-config: _data.weight_dtype: float8_e5m2 is not supported (only "
            "float8_e4m3fn)"},
        Bad{"DtypeAsString", with(torchao_row(), P("/_data/weight_dtype"), "torch.float8_e4m3fn"),
            "quantization-config: _data.weight_dtype: expected {\"_type\": \"torch.dtype\", "
            "\"_data\": <name>} as config_to_dict writes it (got \"torch.float8_e4m3fn\")"},
        Bad{"ActivationLowerBound", with(torchao_block(), P("/_data/activation_value_lb"), 1e-12),
            "quantization-config: _data.activation_value_lb: 1e-12 is not supported (it clamps "
            "the activation amax; fp8llm's activation scales are amax * float32(1/448) of the "
            "amax itself: use null)"},
        Bad{"ActivationUpperBound", with(torchao_row(), P("/_data/activation_value_ub"), 1000),
            "quantization-config: _data.activation_value_ub: 1000 is not supported (it clamps the "
            "activation amax; fp8llm's activation scales are amax * float32(1/448) of the amax "
            "itself: use null)"},
        Bad{"SparsePacking",
            with(torchao_row(), P("/_data/packing_format/_data"), "SPARSE_2D_DATA_2D_METADATA"),
            "quantization-config: _data.packing_format: SPARSE_2D_DATA_2D_METADATA is not "
            "supported (only PLAIN: dense weights)"},
        Bad{"UnknownField", with(torchao_row(), P("/_data/use_hqq"), true),
            "quantization-config: _data.use_hqq: not a known field of "
            "Float8DynamicActivationFloat8WeightConfig (known: activation_dtype, weight_dtype, "
            "granularity, packing_format, mm_config, activation_value_lb, activation_value_ub, "
            "kernel_preference, set_inductor_config, alg_id); refused, as it could change the "
            "numerics"},
        Bad{"UnknownKernel", with(torchao_row(), P("/_data/kernel_preference/_data"), "FAST"),
            "quantization-config: _data.kernel_preference: FAST is not a KernelPreference"},
        Bad{"MmConfigNotBool",
            with(torchao_row(), P("/_data/mm_config/_data/use_fast_accum"), "yes"),
            "quantization-config: _data.mm_config._data.use_fast_accum: expected true or false "
            "(got \"yes\")"},
        Bad{"WeightOnly", with(torchao_row(), P("/_type"), "Float8WeightOnlyConfig"),
            "quantization-config: _type: Float8WeightOnlyConfig is not supported (only "
            "Float8DynamicActivationFloat8WeightConfig: float8_e4m3fn weights and dynamically "
            "quantized float8_e4m3fn activations)"},
        Bad{"StaticActivations",
            with(torchao_row(), P("/_type"), "Float8StaticActivationFloat8WeightConfig"),
            "quantization-config: _type: Float8StaticActivationFloat8WeightConfig is not supported "
            "(only Float8DynamicActivationFloat8WeightConfig: float8_e4m3fn weights and "
            "dynamically quantized float8_e4m3fn activations)"},
        Bad{"Int4", json::parse(R"({"_type": "Int4WeightOnlyConfig", "_version": 2,
                                    "_data": {"group_size": 128}})"),
            "quantization-config: _type: Int4WeightOnlyConfig is not supported (only "
            "Float8DynamicActivationFloat8WeightConfig: float8_e4m3fn weights and dynamically "
            "quantized float8_e4m3fn activations)"},
        Bad{"PerModule",
            json{{"_type", "FqnToConfig"},
                 {"_version", 1},
                 {"_data", {{"fqn_to_config", {{"_default", torchao_row()}}}}}},
            "quantization-config: _type: FqnToConfig (per-module configs) is not supported: pass "
            "the Float8DynamicActivationFloat8WeightConfig itself, applied to every projection"},
        Bad{"Version3", with(torchao_row(), P("/_version"), 3),
            "quantization-config: _version: 3 is not supported (versions 1 and 2 are read)"},
        Bad{"NoData", json{{"_type", "Float8DynamicActivationFloat8WeightConfig"}},
            "quantization-config: _data: expected an object (got null)"},
        Bad{"ExtraTopLevelKey", with(torchao_row(), P("/_module"), "torchao.quantization"),
            "quantization-config: _module: not a known field of a torchao config (known: _type, "
            "_version, _data); refused, as it could change the numerics"}),
    [](const auto& p) { return p.param.name; });

class WrapperErrors : public ::testing::TestWithParam<Bad> {};

TEST_P(WrapperErrors, NameTheJsonPath) {
  EXPECT_EQ(error_of(GetParam().config), GetParam().message);
}

json hf_torchao() {
  return {{"quant_method", "torchao"}, {"quant_type", {{"default", torchao_row()}}}};
}

INSTANTIATE_TEST_SUITE_P(
    All, WrapperErrors,
    ::testing::Values(
        Bad{"NestedPath",
            json{{"quantization_config",
                  with(hf_torchao(), P("/quant_type/default/_data/granularity/0"), per_tensor())}},
            "quantization-config: quantization_config.quant_type.default._data.granularity[0]: "
            "PerTensor is not supported (use PerRow or PerBlock)"},
        Bad{"DictJsonPath",
            json{{"quantization_config_dict_json",
                  with(torchao_row(), P("/_data/weight_dtype"), dtype("float8_e5m2")).dump()}},
            "quantization-config: quantization_config_dict_json._data.weight_dtype: float8_e5m2 "
            "is not supported (only float8_e4m3fn)"},
        Bad{"DictJsonNotString", json{{"quantization_config_dict_json", torchao_row()}},
            "quantization-config: quantization_config_dict_json: expected the config as a JSON "
            "string (got " +
                torchao_row().dump() + ")"},
        Bad{"OtherOverride",
            json{{"quantization_config", hf_torchao()}, {"max_position_embeddings", 4096}},
            "quantization-config: max_position_embeddings: not a known field of hf_overrides "
            "(known: quantization_config, quantization_config_dict_json); refused, as it could "
            "change the numerics"},
        Bad{"BothOverrides",
            json{{"quantization_config", hf_torchao()},
                 {"quantization_config_dict_json", torchao_row().dump()}},
            "quantization-config: gives both quantization_config and "
            "quantization_config_dict_json; give one"},
        Bad{"LegacyStringQuantType",
            json{{"quant_method", "torchao"},
                 {"quant_type", "float8_dynamic_activation_float8_weight"}},
            "quantization-config: quant_type: \"float8_dynamic_activation_float8_weight\" is a "
            "legacy string quant type; give the config as config_to_dict writes it ({\"default\": "
            "{\"_type\": \"Float8DynamicActivationFloat8WeightConfig\", ...}})"},
        Bad{"PerModuleQuantType",
            with(hf_torchao(), P("/quant_type/model.layers.0.mlp.down_proj"), torchao_block()),
            "quantization-config: quant_type.model.layers.0.mlp.down_proj: per-module configs are "
            "not supported (only \"default\", for every projection)"},
        Bad{"NoDefault", json{{"quant_method", "torchao"}, {"quant_type", json::object()}},
            "quantization-config: quant_type: expected {\"default\": <torchao config>} (got {})"},
        Bad{"ModulesNotConverted",
            with(hf_torchao(), P("/modules_to_not_convert"), {"model.layers.0.mlp.down_proj"}),
            "quantization-config: modules_to_not_convert[0]: leaving "
            "\"model.layers.0.mlp.down_proj\" unquantized is not supported (fp8llm quantizes "
            "every decoder projection; only lm_head and embed_tokens, which it never quantizes, "
            "may be listed)"},
        Bad{"QuantizedEmbeddings", with(hf_torchao(), P("/include_input_output_embeddings"), true),
            "quantization-config: include_input_output_embeddings: true is not supported (fp8llm "
            "keeps the embeddings and lm_head in the checkpoint dtype)"},
        Bad{"QuantTypeKwargs", with(hf_torchao(), P("/quant_type_kwargs"), {{"group_size", 32}}),
            "quantization-config: quant_type_kwargs: {\"group_size\":32} is not supported (it "
            "only applies to string quant types)"},
        Bad{"OtherMethod", json{{"quant_method", "gptq"}, {"bits", 4}},
            "quantization-config: quant_method: \"gptq\" is not supported (torchao, fp8 or "
            "compressed-tensors FP8 configs are read)"},
        Bad{"NotAConfig", json{{"granularity", "PerRow"}},
            "quantization-config: not a quantization config (keys: \"granularity\"): expected a "
            "torchao config {\"_type\": ..., \"_data\": ...}, a quantization_config "
            "{\"quant_method\": ...} or vLLM hf_overrides {\"quantization_config\": ...}"},
        Bad{"NotAnObject", json::array({1, 2}),
            "quantization-config: expected a JSON object (got [1,2])"}),
    [](const auto& p) { return p.param.name; });

class Fp8Errors : public ::testing::TestWithParam<Bad> {};

TEST_P(Fp8Errors, NameTheJsonPath) {
  EXPECT_EQ(error_of(GetParam().config), GetParam().message);
}

json fp8() {
  return {{"quant_method", "fp8"}, {"weight_block_size", {128, 128}}};
}

INSTANTIATE_TEST_SUITE_P(
    All, Fp8Errors,
    ::testing::Values(
        Bad{"PerTensor", json{{"quant_method", "fp8"}},
            "quantization-config: weight_block_size: absent, which means one scale per weight "
            "tensor; per-tensor FP8 is not supported (use [128, 128])"},
        Bad{"OtherBlock", with(fp8(), P("/weight_block_size"), {64, 64}),
            "quantization-config: weight_block_size: [64,64] is not supported (only [128, 128])"},
        Bad{"StaticActivations", with(fp8(), P("/activation_scheme"), "static"),
            "quantization-config: activation_scheme: \"static\" is not supported (static scales "
            "come from calibration; fp8llm quantizes activations dynamically: use \"dynamic\")"},
        Bad{"E5m2", with(fp8(), P("/fmt"), "e5m2"),
            "quantization-config: fmt: \"e5m2\" is not supported (only e4m3)"},
        Bad{"Dequantize", with(fp8(), P("/dequantize"), true),
            "quantization-config: dequantize: true is not supported (it loads the weights "
            "unquantized: use --quantization none)"},
        Bad{"UnknownKey", with(fp8(), P("/weight_scale_dtype"), "bf16"),
            "quantization-config: weight_scale_dtype: not a known field of an fp8 "
            "quantization_config (known: quant_method, fmt, activation_scheme, weight_block_size, "
            "modules_to_not_convert, ignored_layers, dequantize); refused, as it could change the "
            "numerics"}),
    [](const auto& p) { return p.param.name; });

class CompressedTensorsErrors : public ::testing::TestWithParam<Bad> {};

TEST_P(CompressedTensorsErrors, NameTheJsonPath) {
  EXPECT_EQ(error_of(GetParam().config), GetParam().message);
}

json ct() {
  return quantization_config_for(Fp8Scheme::Row);
}
const std::string g0 = "quantization-config: config_groups.group_0.";

INSTANTIATE_TEST_SUITE_P(
    All, CompressedTensorsErrors,
    ::testing::Values(
        Bad{"PerTensorWeights", with(ct(), P("/config_groups/group_0/weights/strategy"), "tensor"),
            g0 + "weights.strategy: \"tensor\" is not supported (channel -> fp8-row, block -> "
                 "fp8-block)"},
        Bad{"StaticActivations",
            with(ct(), P("/config_groups/group_0/input_activations/dynamic"), false),
            g0 + "input_activations.dynamic: false is not supported (static activation scales "
                 "come from calibration; fp8llm computes them at run time: use true)"},
        Bad{"WeightOnly", with(ct(), P("/config_groups/group_0/input_activations"), nullptr),
            g0 + "input_activations: absent: weight-only FP8 is not supported (fp8llm quantizes "
                 "activations dynamically; give {\"dynamic\": true, \"strategy\": \"token\"})"},
        Bad{"Int4",
            with(with(ct(), P("/config_groups/group_0/weights/num_bits"), 4),
                 P("/config_groups/group_0/weights/type"), "int"),
            g0 + "weights: num_bits 4 type \"int\" is not supported (only 8-bit float, i.e. "
                 "float8_e4m3fn)"},
        Bad{"MseObserver", with(ct(), P("/config_groups/group_0/weights/observer"), "mse"),
            g0 + "weights.observer: \"mse\" is not supported (fp8llm's weight scales come from "
                 "the amax: minmax)"},
        Bad{"TokenWithBlockWeights",
            with(with(ct(), P("/config_groups/group_0/weights/strategy"), "block"),
                 P("/config_groups/group_0/weights/block_structure"), {128, 128}),
            g0 + "input_activations.strategy: \"token\" with group_size null is not supported "
                 "with block weights (only \"group\", 128)"},
        Bad{"TwoGroups", with(ct(), P("/config_groups/group_1"), ct()["config_groups"]["group_0"]),
            "quantization-config: config_groups: 2 groups are not supported (one group, targets "
            "[\"Linear\"], applied to every projection)"},
        Bad{"SomeTargets", with(ct(), P("/config_groups/group_0/targets"), {"re:.*down_proj"}),
            g0 + "targets: [\"re:.*down_proj\"] is not supported (only [\"Linear\"]: every "
                 "projection)"},
        Bad{"KvCache", with(ct(), P("/kv_cache_scheme"), {{"num_bits", 8}, {"type", "float"}}),
            "quantization-config: kv_cache_scheme: {\"num_bits\":8,\"type\":\"float\"} is not "
            "supported (the KV cache is not quantized)"},
        Bad{"IgnoredProjection", with(ct(), P("/ignore"), {"lm_head", "re:.*mlp.down_proj"}),
            "quantization-config: ignore[1]: leaving \"re:.*mlp.down_proj\" unquantized is not "
            "supported (fp8llm quantizes every decoder projection; only lm_head and "
            "embed_tokens, which it never quantizes, may be listed)"}),
    [](const auto& p) { return p.param.name; });

TEST(QuantizationRequest, NotJsonAndTheSourceName) {
  EXPECT_EQ(error_of_text("{not json").rfind("quantization-config: not valid JSON (", 0), 0u)
      << error_of_text("{not json");
  EXPECT_EQ(error_of_text("").rfind("quantization-config: not valid JSON (", 0), 0u);
  // Errors start with the source given, e.g. the file the config came from.
  try {
    parse_quantization_request(with(torchao_row(), P("/_data/granularity/0"), per_tensor()).dump(),
                               "/cfg/torchao.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "/cfg/torchao.json: _data.granularity[0]: PerTensor is not supported (use PerRow "
                 "or PerBlock)");
  }
  // The JSON inside quantization_config_dict_json is checked too.
  EXPECT_EQ(error_of(json{{"quantization_config_dict_json", "{\"_type\": "}})
                .rfind("quantization-config: quantization_config_dict_json: not valid JSON (", 0),
            0u);
}

TEST(QuantizationRequest, WithQuantizationFlag) {
  const QuantizationRequest row = parse(torchao_row());
  const QuantizationRequest block = parse(torchao_block());
  const auto with = [](const char* flag, const QuantizationRequest& r) {
    return std::string(to_string(quantization_with_request(parse_quantization(flag), r)));
  };
  EXPECT_EQ(with("auto", row), "fp8-row");
  EXPECT_EQ(with("auto", block), "fp8-block");
  EXPECT_EQ(with("fp8-row", row), "fp8-row");
  EXPECT_EQ(with("fp8-block", block), "fp8-block");
  try {
    with("fp8-block", row);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "--quantization fp8-block and --quantization-config (torchao "
                 "Float8DynamicActivationFloat8WeightConfig, granularity [PerRow, PerRow], i.e. "
                 "fp8-row) disagree; give one of them, or the same mode in both");
  }
  try {
    with("none", block);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--quantization none and --quantization-config"),
              std::string::npos)
        << e.what();
  }
  try {
    with("int4", block);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--quantization: 'int4' is not one of auto, none, fp8-row, fp8-block");
  }
}

}  // namespace
}  // namespace fp8llm::test
