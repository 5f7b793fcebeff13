#include "formats/hf_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"
#include "core/json_view.h"

namespace fp8llm {
namespace {

using nlohmann::json;

// Dimensions above this would overflow the shape arithmetic (vocab * hidden, heads * head_dim).
constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;

// What transformers' config class of each model_type uses for a field that config.json omits.
struct ModelTypeDefaults {
  std::string_view model_type;
  std::string_view architecture;
  std::optional<int64_t> num_kv_heads;  // unset: num_attention_heads
  std::optional<int64_t> head_dim;      // unset: hidden_size / num_attention_heads
  int64_t max_position_embeddings;
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> eos_token_id;
};

// LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config.
constexpr ModelTypeDefaults kModelTypes[] = {
    {"llama", "LlamaForCausalLM", std::nullopt, std::nullopt, 2048, 1, 2},
    {"mistral", "MistralForCausalLM", 8, std::nullopt, 4096 * 32, 1, 2},
    {"qwen2", "Qwen2ForCausalLM", 32, std::nullopt, 32768, std::nullopt, std::nullopt},
    {"qwen3", "Qwen3ForCausalLM", 32, 128, 32768, std::nullopt, std::nullopt},
};
constexpr std::string_view kSupportedModelTypes = "llama, mistral, qwen2, qwen3";

constexpr double kDefaultRopeTheta = 10000.0;
constexpr double kDefaultRmsNormEps = 1e-6;
// Mistral, Qwen2 and Qwen3 default sliding_window; Qwen2/Qwen3 default max_window_layers.
constexpr int64_t kDefaultSlidingWindow = 4096;
constexpr int64_t kDefaultMaxWindowLayers = 28;

// Typed reads of config.json's fields. An absent field and a null one are alike (transformers
// reads both as "not set"); errors name the file and the field's path, e.g.
// "config.json: rope_scaling.factor: expected a positive number, got -8.0".

int64_t positive_int(const JsonView& v) {
  const json& j = v.json();
  if (!j.is_number_integer()) v.expected("a positive integer");
  if (j.is_number_unsigned() ? j.get<uint64_t>() == 0 : j.get<int64_t>() <= 0)
    v.expected("a positive integer");
  if (j.is_number_unsigned() ? j.get<uint64_t>() > static_cast<uint64_t>(kMaxDim)
                             : j.get<int64_t>() > kMaxDim) {
    v.fail("out of range (got {}, at most {})", v.brief(), kMaxDim);
  }
  return j.get<int64_t>();
}
std::optional<int64_t> optional_positive_int(const JsonView& f, std::string_view key) {
  const auto v = f.find(key);
  if (!v) return std::nullopt;
  return positive_int(*v);
}

// Also used for token ids. Both signed and unsigned JSON integers are range-checked.
int64_t non_negative_int(const JsonView& v) {
  const json& j = v.json();
  const bool ok = j.is_number_integer() &&
                  (j.is_number_unsigned() ? j.get<uint64_t>() <= static_cast<uint64_t>(kMaxDim)
                                          : j.get<int64_t>() >= 0 && j.get<int64_t>() <= kMaxDim);
  if (!ok) v.expected("a non-negative integer below 2^31");
  return j.get<int64_t>();
}

double positive_number(const JsonView& v) {
  if (!v.json().is_number()) v.expected("a positive number");
  const double d = v.json().get<double>();
  if (!(d > 0.0) || !std::isfinite(d)) v.expected("a positive number");
  return d;
}
std::optional<double> optional_positive_number(const JsonView& f, std::string_view key) {
  const auto v = f.find(key);
  if (!v) return std::nullopt;
  return positive_number(*v);
}

std::optional<bool> optional_bool(const JsonView& f, std::string_view key) {
  const auto v = f.find(key);
  if (!v) return std::nullopt;
  return v->as_bool();
}

const ModelTypeDefaults& model_type_defaults(const JsonView& f) {
  const std::string model_type = f["model_type"].as_string();
  for (const auto& d : kModelTypes) {
    if (d.model_type == model_type) return d;
  }
  fail("{}: model_type '{}' is not supported (supported: {})", f.file(), model_type,
       kSupportedModelTypes);
}

// architectures[0]. Only the causal-LM head is supported: the other heads (sequence
// classification, token classification, ...) replace lm_head with something else.
std::string parse_architecture(const JsonView& f, const ModelTypeDefaults& d) {
  const auto v = f.find("architectures");
  if (!v) return std::string(d.architecture);
  if (!v->json().is_array()) v->expected("a list of strings");
  if (v->json().empty()) return std::string(d.architecture);
  if (!v->json().front().is_string()) v->expected("a list of strings");
  std::string arch = v->json().front().get<std::string>();
  constexpr std::string_view kSuffix = "ForCausalLM";
  if (!arch.ends_with(kSuffix)) {
    fail("{}: architecture '{}' is not supported (supported: *{}, e.g. {})", f.file(), arch,
         kSuffix, d.architecture);
  }
  return arch;
}

// transformers rotates the whole head; a partial rotary embedding would be computed wrongly.
void check_no_partial_rotary(const JsonView& f) {
  const auto v = f.find("partial_rotary_factor");
  if (!v) return;
  if (v->as_number() != 1.0) {
    v->fail("partial rotary embeddings ({}) are not supported (supported: 1.0)", v->brief());
  }
}

bool same_rope(const RopeConfig& a, const RopeConfig& b) {
  if (a.type != b.type || a.theta != b.theta) return false;
  if (a.type == RopeType::Default) return true;
  return a.factor == b.factor && a.low_freq_factor == b.low_freq_factor &&
         a.high_freq_factor == b.high_freq_factor &&
         a.original_max_position_embeddings == b.original_max_position_embeddings;
}

// One RoPE object: `rope_scaling` (legacy, where the type must be named) or `rope_parameters`
// (current, where an unnamed type is "default", as transformers reads it). `top_theta` is the
// top-level `rope_theta`, used when the object has none.
RopeConfig parse_rope_object(const JsonView& top, std::string_view key,
                             std::optional<double> top_theta, bool type_required) {
  const JsonView f = top[key];
  for (const auto& [name, value] : f.as_object()) {
    // transformers v5 nests one parameter set per attention type (e.g. "full_attention") in
    // models whose layers differ; none of the supported architectures does that.
    if (value.is_object()) {
      f.child(name, value).fail("per-layer-type RoPE parameters are not supported");
    }
  }
  check_no_partial_rotary(f);

  std::optional<std::string> type = f.optional_string("rope_type");
  const std::optional<std::string> legacy_type = f.optional_string("type");
  if (type && legacy_type && *type != *legacy_type) {
    fail("{}: fields '{}' ('{}') and '{}' ('{}') disagree", f.file(), f.member("rope_type").path(),
         *type, f.member("type").path(), *legacy_type);
  }
  if (!type) type = legacy_type;
  if (!type) {
    if (type_required) f.member("rope_type").fail("missing");
    type = "default";
  }

  RopeConfig rope;
  const std::optional<double> theta = optional_positive_number(f, "rope_theta");
  if (theta && top_theta && *theta != *top_theta) {
    fail("{}: fields 'rope_theta' ({}) and '{}' ({}) disagree", f.file(), *top_theta,
         f.member("rope_theta").path(), *theta);
  }
  rope.theta = theta.value_or(top_theta.value_or(kDefaultRopeTheta));

  if (*type == "default") {
    rope.type = RopeType::Default;
  } else if (*type == "llama3") {
    rope.type = RopeType::Llama3;
    rope.factor = positive_number(f["factor"]);
    rope.low_freq_factor = positive_number(f["low_freq_factor"]);
    rope.high_freq_factor = positive_number(f["high_freq_factor"]);
    rope.original_max_position_embeddings = positive_int(f["original_max_position_embeddings"]);
    if (!(rope.high_freq_factor > rope.low_freq_factor)) {
      f["high_freq_factor"].fail("{} must be greater than '{}' ({})", rope.high_freq_factor,
                                 f.member("low_freq_factor").path(), rope.low_freq_factor);
    }
  } else {
    f.member(f.contains("rope_type") ? "rope_type" : "type")
        .fail("'{}' is not supported (supported: default, llama3)", *type);
  }
  return rope;
}

RopeConfig parse_rope(const JsonView& f) {
  check_no_partial_rotary(f);
  const std::optional<double> top_theta = optional_positive_number(f, "rope_theta");
  std::optional<RopeConfig> from_parameters;
  std::optional<RopeConfig> from_scaling;
  if (f.has("rope_parameters")) {
    from_parameters = parse_rope_object(f, "rope_parameters", top_theta, false);
  }
  if (f.has("rope_scaling")) {
    from_scaling = parse_rope_object(f, "rope_scaling", top_theta, true);
  }
  if (from_parameters && from_scaling && !same_rope(*from_parameters, *from_scaling)) {
    fail("{}: fields 'rope_parameters' and 'rope_scaling' describe different RoPE settings",
         f.file());
  }
  if (from_parameters) return *from_parameters;
  if (from_scaling) return *from_scaling;
  RopeConfig rope;
  rope.theta = top_theta.value_or(kDefaultRopeTheta);
  return rope;
}

// A `sliding_window` field: absent takes the model type's default, null means none.
std::optional<int64_t> sliding_window_field(const JsonView& f) {
  if (!f.contains("sliding_window")) return kDefaultSlidingWindow;
  return optional_positive_int(f, "sliding_window");
}

[[noreturn]] void fail_sliding_window(const JsonView& f, int64_t window, int64_t max_positions,
                                      std::string_view note) {
  fail(
      "{}: sliding-window attention is not supported (sliding_window {} is shorter than "
      "max_position_embeddings {}{})",
      f.file(), window, max_positions, note);
}

// A sliding window changes the result only when some layer uses it and it is shorter than the
// longest context the model accepts; then it is an Error. Otherwise it is ignored.
void check_sliding_window(const JsonView& f, const ModelConfig& c) {
  if (c.model_type == "mistral") {
    // Every Mistral layer uses `sliding_window` when it is set.
    const std::optional<int64_t> window = sliding_window_field(f);
    if (window && *window < c.max_position_embeddings) {
      fail_sliding_window(f, *window, c.max_position_embeddings,
                          f.contains("sliding_window")
                              ? std::string()
                              : fmt::format("; {} is the mistral default", kDefaultSlidingWindow));
    }
    return;
  }
  if (c.model_type != "qwen2" && c.model_type != "qwen3") return;  // llama has none

  const bool use = optional_bool(f, "use_sliding_window").value_or(false);
  const std::optional<int64_t> raw_window = sliding_window_field(f);
  const auto max_window_layers_field = f.find("max_window_layers");
  const int64_t max_window_layers = max_window_layers_field
                                        ? non_negative_int(*max_window_layers_field)
                                        : kDefaultMaxWindowLayers;

  std::vector<int64_t> sliding_layers;
  std::optional<int64_t> window;
  if (const auto types = f.find("layer_types")) {
    // Explicit per-layer attention types (written by current transformers). A window with
    // sliding layers counts as used whatever use_sliding_window says: the two disagree only in
    // hand-edited files, and guessing full attention there could be silently wrong.
    if (!types->json().is_array()) types->expected("a list of strings");
    const size_t n = types->json().size();
    if (static_cast<int64_t>(n) != c.num_layers) {
      types->fail("has {} entries but num_hidden_layers is {}", n, c.num_layers);
    }
    for (size_t i = 0; i < n; ++i) {
      const JsonView t = (*types)[i];
      const std::string name = t.as_string();
      if (name == "sliding_attention") {
        sliding_layers.push_back(static_cast<int64_t>(i));
      } else if (name != "full_attention") {
        t.fail("'{}' is not supported (supported: full_attention, sliding_attention)", name);
      }
    }
    window = raw_window;
  } else if (use && raw_window) {
    // Derived as transformers derives it: layers from max_window_layers on slide.
    window = raw_window;
    for (int64_t i = max_window_layers; i < c.num_layers; ++i) sliding_layers.push_back(i);
  }
  if (window && !sliding_layers.empty() && *window < c.max_position_embeddings) {
    const std::string note = sliding_layers.size() == 1
                                 ? fmt::format("; layer {} uses it", sliding_layers.front())
                                 : fmt::format("; {} layers use it, the first is layer {}",
                                               sliding_layers.size(), sliding_layers.front());
    fail_sliding_window(f, *window, c.max_position_embeddings, note);
  }
}

void parse_token_ids(const JsonView& f, const ModelTypeDefaults& d, ModelConfig& c) {
  if (!f.contains("bos_token_id")) {
    c.bos_token_id = d.bos_token_id;
  } else if (const auto v = f.find("bos_token_id")) {
    if (!v->json().is_number_integer()) v->expected("an integer or null");
    c.bos_token_id = non_negative_int(*v);
  }

  c.eos_token_ids.clear();
  if (!f.contains("eos_token_id")) {
    if (d.eos_token_id) c.eos_token_ids.push_back(*d.eos_token_id);
  } else if (const auto v = f.find("eos_token_id")) {
    if (v->json().is_array()) {
      for (size_t i = 0; i < v->json().size(); ++i)
        c.eos_token_ids.push_back(non_negative_int((*v)[i]));
    } else if (v->json().is_number_integer()) {
      c.eos_token_ids.push_back(non_negative_int(*v));
    } else {
      v->expected("an integer, a list of integers or null");
    }
  }
}

std::string parse_dtype(const JsonView& f) {
  // Current transformers writes `dtype`; older versions `torch_dtype`.
  const std::string_view key = f.has("dtype") ? "dtype" : "torch_dtype";
  const std::optional<std::string> dtype = f.optional_string(key);
  if (!dtype) return "";
  if (*dtype != "bfloat16" && *dtype != "float16" && *dtype != "float32") {
    f[key].fail("'{}' is not supported (supported: bfloat16, float16, float32)", *dtype);
  }
  return *dtype;
}

// 1-based line and column of the character at 1-based offset `byte` (nlohmann's parse_error::byte,
// the last character read; past the end for a truncated file).
std::pair<size_t, size_t> line_and_column(std::string_view text, size_t byte) {
  const size_t end = std::min(byte == 0 ? 0 : byte - 1, text.size());
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, end - line_start + 1};
}

}  // namespace

ModelConfig parse_model_config(const json& config, const std::string& source) {
  if (!config.is_object()) {
    fail("{}: expected a JSON object at the top level (got {})", source, config.type_name());
  }
  const JsonView f(config, source);
  const ModelTypeDefaults& d = model_type_defaults(f);

  ModelConfig c;
  c.model_type = std::string(d.model_type);
  c.architecture = parse_architecture(f, d);
  c.hidden_size = positive_int(f["hidden_size"]);
  c.intermediate_size = positive_int(f["intermediate_size"]);
  c.num_layers = positive_int(f["num_hidden_layers"]);
  c.num_heads = positive_int(f["num_attention_heads"]);
  c.vocab_size = positive_int(f["vocab_size"]);

  // Absent: the class default; null: num_attention_heads (every class's backward-compatible
  // reading of None).
  const std::optional<int64_t> kv_heads = optional_positive_int(f, "num_key_value_heads");
  c.num_kv_heads = kv_heads.value_or(
      f.contains("num_key_value_heads") ? c.num_heads : d.num_kv_heads.value_or(c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0) {
    fail("{}: num_attention_heads {} is not divisible by num_key_value_heads {}{}", source,
         c.num_heads, c.num_kv_heads,
         kv_heads ? "" : fmt::format(" (the {} default)", d.model_type));
  }

  // `head_dim`: explicit; null means "derive" (as transformers' `head_dim or hidden // heads`);
  // absent takes the class default, which for Qwen3 is 128 and otherwise derived.
  std::optional<int64_t> head_dim = optional_positive_int(f, "head_dim");
  if (!head_dim && !f.contains("head_dim")) head_dim = d.head_dim;
  if (head_dim) {
    c.head_dim = *head_dim;
  } else {
    if (c.hidden_size % c.num_heads != 0) {
      fail(
          "{}: hidden_size {} is not divisible by num_attention_heads {} (and 'head_dim' is not "
          "set)",
          source, c.hidden_size, c.num_heads);
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) {
    fail("{}: head_dim {} is odd; rotary embeddings need an even head_dim", source, c.head_dim);
  }

  c.max_position_embeddings =
      optional_positive_int(f, "max_position_embeddings").value_or(d.max_position_embeddings);
  c.rms_norm_eps = optional_positive_number(f, "rms_norm_eps").value_or(kDefaultRmsNormEps);

  // transformers maps both names to the same SiLU module.
  const std::string act = f.optional_string("hidden_act").value_or("silu");
  if (act != "silu" && act != "swish") {
    f["hidden_act"].fail("'{}' is not supported (supported: silu)", act);
  }

  c.rope = parse_rope(f);
  c.tie_word_embeddings = optional_bool(f, "tie_word_embeddings").value_or(false);

  // Read (and so type-checked) for every model type, used where the architecture has it.
  const bool attention_bias = optional_bool(f, "attention_bias").value_or(false);
  const bool mlp_bias = optional_bool(f, "mlp_bias").value_or(false);
  if (c.model_type == "llama") {
    c.qkv_bias = c.o_bias = attention_bias;
    c.mlp_bias = mlp_bias;
  } else if (c.model_type == "qwen2") {
    c.qkv_bias = true;
  } else if (c.model_type == "qwen3") {
    c.qkv_bias = c.o_bias = attention_bias;
    c.qk_norm = true;
  }

  check_sliding_window(f, c);
  c.dtype = parse_dtype(f);
  parse_token_ids(f, d, c);

  if (const auto q = f.find("quantization_config")) {
    q->as_object();
    c.quantization_config = q->json();
  }
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& model_dir) {
  const std::filesystem::path path = model_dir / "config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    fail("{}: not found (a model directory must hold the Hugging Face config.json)", path.string());
  }
  return parse_model_config_text(read_text_file(path), path.string());
}

ModelConfig parse_model_config_text(std::string_view text, const std::string& source) {
  json config;
  try {
    config = json::parse(text);
  } catch (const json::parse_error& e) {
    const auto [line, column] = line_and_column(text, e.byte);
    // e.what() is "[json.exception.parse_error.101] parse error at line L, column C: <detail>";
    // its column is not reliable, so the position is recomputed from the byte offset.
    std::string_view detail = e.what();
    if (const auto pos = detail.find(": "); pos != std::string_view::npos) {
      detail.remove_prefix(pos + 2);
    }
    fail("{}: invalid JSON at line {}, column {}: {}", source, line, column, detail);
  } catch (const json::exception& e) {  // a number out of range ("number overflow parsing '1e999'")
    std::string_view detail = e.what();
    if (const auto pos = detail.find("] "); pos != std::string_view::npos) {
      detail.remove_prefix(pos + 2);
    }
    fail("{}: invalid JSON: {}", source, detail);
  }
  check_json_depth(config, source);
  return parse_model_config(config, source);
}

}  // namespace fp8llm
