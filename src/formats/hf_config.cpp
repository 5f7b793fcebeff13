#include "formats/hf_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/file_util.h"

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

// A JSON value shortened for an error message.
std::string brief(const json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// Typed reads of one JSON object's fields. Errors name the file and the field's full path
// (e.g. "rope_scaling.factor").
class Fields {
 public:
  Fields(const json& object, const std::string& source, std::string prefix = "")
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  const std::string& source() const { return source_; }
  std::string path(std::string_view key) const { return prefix_ + std::string(key); }

  // Present, possibly null.
  bool has(std::string_view key) const { return object_.contains(std::string(key)); }
  // The value, or nullptr when absent or null (transformers treats both as "not set").
  const json* find(std::string_view key) const {
    const auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const json& require(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) fail("{}: field '{}' is missing", source_, path(key));
    return *v;
  }

  [[noreturn]] void must_be(std::string_view key, const json& value, std::string_view what) const {
    fail("{}: field '{}' must be {} (got {})", source_, path(key), what, brief(value));
  }

  int64_t positive_int(std::string_view key, const json& v) const {
    if (!v.is_number_integer()) must_be(key, v, "a positive integer");
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u == 0) must_be(key, v, "a positive integer");
      if (u > static_cast<uint64_t>(kMaxDim)) {
        fail("{}: field '{}' is out of range (got {}, at most {})", source_, path(key), brief(v),
             kMaxDim);
      }
      return static_cast<int64_t>(u);
    }
    const auto i = v.get<int64_t>();
    if (i <= 0) must_be(key, v, "a positive integer");
    if (i > kMaxDim) {
      fail("{}: field '{}' is out of range (got {}, at most {})", source_, path(key), brief(v),
           kMaxDim);
    }
    return i;
  }
  int64_t required_positive_int(std::string_view key) const {
    return positive_int(key, require(key));
  }
  std::optional<int64_t> optional_positive_int(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    return positive_int(key, *v);
  }

  // Also used for token ids. Both signed and unsigned JSON integers are range-checked.
  int64_t non_negative_int(std::string_view key, const json& v) const {
    const bool ok = v.is_number_integer() &&
                    (v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(kMaxDim)
                                            : v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMaxDim);
    if (!ok) must_be(key, v, "a non-negative integer below 2^31");
    return v.get<int64_t>();
  }
  std::optional<int64_t> optional_non_negative_int(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    return non_negative_int(key, *v);
  }

  double positive_number(std::string_view key, const json& v) const {
    if (!v.is_number()) must_be(key, v, "a positive number");
    const double d = v.get<double>();
    if (!(d > 0.0) || !std::isfinite(d)) must_be(key, v, "a positive number");
    return d;
  }
  double required_positive_number(std::string_view key) const {
    return positive_number(key, require(key));
  }
  std::optional<double> optional_positive_number(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    return positive_number(key, *v);
  }

  std::optional<bool> optional_bool(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) must_be(key, *v, "true or false");
    return v->get<bool>();
  }

  std::optional<std::string> optional_string(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) must_be(key, *v, "a string");
    return v->get<std::string>();
  }
  std::string required_string(std::string_view key) const {
    const json& v = require(key);
    if (!v.is_string()) must_be(key, v, "a string");
    return v.get<std::string>();
  }

  const json& required_object(std::string_view key) const {
    const json& v = require(key);
    if (!v.is_object()) must_be(key, v, "an object");
    return v;
  }

 private:
  const json& object_;
  const std::string& source_;
  std::string prefix_;
};

const ModelTypeDefaults& model_type_defaults(const Fields& f) {
  const std::string model_type = f.required_string("model_type");
  for (const auto& d : kModelTypes) {
    if (d.model_type == model_type) return d;
  }
  fail("{}: model_type '{}' is not supported (supported: {})", f.source(), model_type,
       kSupportedModelTypes);
}

// architectures[0]. Only the causal-LM head is supported: the other heads (sequence
// classification, token classification, ...) replace lm_head with something else.
std::string parse_architecture(const Fields& f, const ModelTypeDefaults& d) {
  const json* v = f.find("architectures");
  if (v == nullptr) return std::string(d.architecture);
  if (!v->is_array()) f.must_be("architectures", *v, "a list of strings");
  if (v->empty()) return std::string(d.architecture);
  const json& first = v->front();
  if (!first.is_string()) f.must_be("architectures", *v, "a list of strings");
  std::string arch = first.get<std::string>();
  constexpr std::string_view kSuffix = "ForCausalLM";
  if (!arch.ends_with(kSuffix)) {
    fail("{}: architecture '{}' is not supported (supported: *{}, e.g. {})", f.source(), arch,
         kSuffix, d.architecture);
  }
  return arch;
}

// transformers rotates the whole head; a partial rotary embedding would be computed wrongly.
void check_no_partial_rotary(const Fields& f) {
  const json* v = f.find("partial_rotary_factor");
  if (v == nullptr) return;
  if (!v->is_number()) f.must_be("partial_rotary_factor", *v, "a number");
  if (v->get<double>() != 1.0) {
    fail("{}: field '{}' is {}: partial rotary embeddings are not supported (supported: 1.0)",
         f.source(), f.path("partial_rotary_factor"), brief(*v));
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
RopeConfig parse_rope_object(const Fields& top, std::string_view key,
                             std::optional<double> top_theta, bool type_required) {
  const json& object = top.required_object(key);
  const Fields f(object, top.source(), std::string(key) + ".");
  for (const auto& [name, value] : object.items()) {
    // transformers v5 nests one parameter set per attention type (e.g. "full_attention") in
    // models whose layers differ; none of the supported architectures does that.
    if (value.is_object()) {
      fail("{}: field '{}' holds per-layer-type RoPE parameters, which are not supported",
           top.source(), f.path(name));
    }
  }
  check_no_partial_rotary(f);

  std::optional<std::string> type = f.optional_string("rope_type");
  const std::optional<std::string> legacy_type = f.optional_string("type");
  if (type && legacy_type && *type != *legacy_type) {
    fail("{}: fields '{}' ('{}') and '{}' ('{}') disagree", top.source(), f.path("rope_type"),
         *type, f.path("type"), *legacy_type);
  }
  if (!type) type = legacy_type;
  if (!type) {
    if (type_required) fail("{}: field '{}' is missing", top.source(), f.path("rope_type"));
    type = "default";
  }

  RopeConfig rope;
  const std::optional<double> theta = f.optional_positive_number("rope_theta");
  if (theta && top_theta && *theta != *top_theta) {
    fail("{}: fields 'rope_theta' ({}) and '{}' ({}) disagree", top.source(), *top_theta,
         f.path("rope_theta"), *theta);
  }
  rope.theta = theta.value_or(top_theta.value_or(kDefaultRopeTheta));

  if (*type == "default") {
    rope.type = RopeType::Default;
  } else if (*type == "llama3") {
    rope.type = RopeType::Llama3;
    rope.factor = f.required_positive_number("factor");
    rope.low_freq_factor = f.required_positive_number("low_freq_factor");
    rope.high_freq_factor = f.required_positive_number("high_freq_factor");
    rope.original_max_position_embeddings =
        f.required_positive_int("original_max_position_embeddings");
    if (!(rope.high_freq_factor > rope.low_freq_factor)) {
      fail("{}: field '{}' ({}) must be greater than '{}' ({})", top.source(),
           f.path("high_freq_factor"), rope.high_freq_factor, f.path("low_freq_factor"),
           rope.low_freq_factor);
    }
  } else {
    fail("{}: field '{}' is '{}', which is not supported (supported: default, llama3)",
         top.source(), f.path(f.has("rope_type") ? "rope_type" : "type"), *type);
  }
  return rope;
}

RopeConfig parse_rope(const Fields& f) {
  check_no_partial_rotary(f);
  const std::optional<double> top_theta = f.optional_positive_number("rope_theta");
  std::optional<RopeConfig> from_parameters;
  std::optional<RopeConfig> from_scaling;
  if (f.find("rope_parameters") != nullptr) {
    from_parameters = parse_rope_object(f, "rope_parameters", top_theta, false);
  }
  if (f.find("rope_scaling") != nullptr) {
    from_scaling = parse_rope_object(f, "rope_scaling", top_theta, true);
  }
  if (from_parameters && from_scaling && !same_rope(*from_parameters, *from_scaling)) {
    fail("{}: fields 'rope_parameters' and 'rope_scaling' describe different RoPE settings",
         f.source());
  }
  if (from_parameters) return *from_parameters;
  if (from_scaling) return *from_scaling;
  RopeConfig rope;
  rope.theta = top_theta.value_or(kDefaultRopeTheta);
  return rope;
}

// A `sliding_window` field: absent takes the model type's default, null means none.
std::optional<int64_t> sliding_window_field(const Fields& f) {
  if (!f.has("sliding_window")) return kDefaultSlidingWindow;
  return f.optional_positive_int("sliding_window");
}

[[noreturn]] void fail_sliding_window(const Fields& f, int64_t window, int64_t max_positions,
                                      std::string_view note) {
  fail(
      "{}: sliding-window attention is not supported (sliding_window {} is shorter than "
      "max_position_embeddings {}{})",
      f.source(), window, max_positions, note);
}

// A sliding window changes the result only when some layer uses it and it is shorter than the
// longest context the model accepts; then it is an Error. Otherwise it is ignored.
void check_sliding_window(const Fields& f, const ModelConfig& c) {
  if (c.model_type == "mistral") {
    // Every Mistral layer uses `sliding_window` when it is set.
    const std::optional<int64_t> window = sliding_window_field(f);
    if (window && *window < c.max_position_embeddings) {
      fail_sliding_window(f, *window, c.max_position_embeddings,
                          f.has("sliding_window")
                              ? std::string()
                              : fmt::format("; {} is the mistral default", kDefaultSlidingWindow));
    }
    return;
  }
  if (c.model_type != "qwen2" && c.model_type != "qwen3") return;  // llama has none

  const bool use = f.optional_bool("use_sliding_window").value_or(false);
  const std::optional<int64_t> raw_window = sliding_window_field(f);
  const int64_t max_window_layers =
      f.optional_non_negative_int("max_window_layers").value_or(kDefaultMaxWindowLayers);

  std::vector<int64_t> sliding_layers;
  std::optional<int64_t> window;
  if (const json* types = f.find("layer_types")) {
    // Explicit per-layer attention types (written by current transformers). A window with
    // sliding layers counts as used whatever use_sliding_window says: the two disagree only in
    // hand-edited files, and guessing full attention there could be silently wrong.
    if (!types->is_array()) f.must_be("layer_types", *types, "a list of strings");
    if (static_cast<int64_t>(types->size()) != c.num_layers) {
      fail("{}: field 'layer_types' has {} entries but num_hidden_layers is {}", f.source(),
           types->size(), c.num_layers);
    }
    for (size_t i = 0; i < types->size(); ++i) {
      const json& t = (*types)[i];
      const std::string key = fmt::format("layer_types[{}]", i);
      if (!t.is_string()) f.must_be(key, t, "a string");
      const std::string name = t.get<std::string>();
      if (name == "sliding_attention") {
        sliding_layers.push_back(static_cast<int64_t>(i));
      } else if (name != "full_attention") {
        fail(
            "{}: field '{}' is '{}', which is not supported (supported: full_attention, "
            "sliding_attention)",
            f.source(), key, name);
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

void parse_token_ids(const Fields& f, const ModelTypeDefaults& d, ModelConfig& c) {
  if (!f.has("bos_token_id")) {
    c.bos_token_id = d.bos_token_id;
  } else if (const json* v = f.find("bos_token_id")) {
    if (!v->is_number_integer()) f.must_be("bos_token_id", *v, "an integer or null");
    c.bos_token_id = f.non_negative_int("bos_token_id", *v);
  }

  c.eos_token_ids.clear();
  if (!f.has("eos_token_id")) {
    if (d.eos_token_id) c.eos_token_ids.push_back(*d.eos_token_id);
  } else if (const json* v = f.find("eos_token_id")) {
    if (v->is_array()) {
      for (size_t i = 0; i < v->size(); ++i) {
        c.eos_token_ids.push_back(f.non_negative_int(fmt::format("eos_token_id[{}]", i), (*v)[i]));
      }
    } else if (v->is_number_integer()) {
      c.eos_token_ids.push_back(f.non_negative_int("eos_token_id", *v));
    } else {
      f.must_be("eos_token_id", *v, "an integer, a list of integers or null");
    }
  }
}

std::string parse_dtype(const Fields& f) {
  // Current transformers writes `dtype`; older versions `torch_dtype`.
  const std::string_view key = f.find("dtype") != nullptr ? "dtype" : "torch_dtype";
  const std::optional<std::string> dtype = f.optional_string(key);
  if (!dtype) return "";
  if (*dtype != "bfloat16" && *dtype != "float16" && *dtype != "float32") {
    fail("{}: field '{}' is '{}', which is not supported (supported: bfloat16, float16, float32)",
         f.source(), key, *dtype);
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
  const Fields f(config, source);
  const ModelTypeDefaults& d = model_type_defaults(f);

  ModelConfig c;
  c.model_type = std::string(d.model_type);
  c.architecture = parse_architecture(f, d);
  c.hidden_size = f.required_positive_int("hidden_size");
  c.intermediate_size = f.required_positive_int("intermediate_size");
  c.num_layers = f.required_positive_int("num_hidden_layers");
  c.num_heads = f.required_positive_int("num_attention_heads");
  c.vocab_size = f.required_positive_int("vocab_size");

  // Absent: the class default; null: num_attention_heads (every class's backward-compatible
  // reading of None).
  const std::optional<int64_t> kv_heads = f.optional_positive_int("num_key_value_heads");
  c.num_kv_heads = kv_heads.value_or(
      f.has("num_key_value_heads") ? c.num_heads : d.num_kv_heads.value_or(c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0) {
    fail("{}: num_attention_heads {} is not divisible by num_key_value_heads {}{}", source,
         c.num_heads, c.num_kv_heads,
         kv_heads ? "" : fmt::format(" (the {} default)", d.model_type));
  }

  // `head_dim`: explicit; null means "derive" (as transformers' `head_dim or hidden // heads`);
  // absent takes the class default, which for Qwen3 is 128 and otherwise derived.
  std::optional<int64_t> head_dim = f.optional_positive_int("head_dim");
  if (!head_dim && !f.has("head_dim")) head_dim = d.head_dim;
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
      f.optional_positive_int("max_position_embeddings").value_or(d.max_position_embeddings);
  c.rms_norm_eps = f.optional_positive_number("rms_norm_eps").value_or(kDefaultRmsNormEps);

  // transformers maps both names to the same SiLU module.
  const std::string act = f.optional_string("hidden_act").value_or("silu");
  if (act != "silu" && act != "swish") {
    fail("{}: field 'hidden_act' is '{}', which is not supported (supported: silu)", source, act);
  }

  c.rope = parse_rope(f);
  c.tie_word_embeddings = f.optional_bool("tie_word_embeddings").value_or(false);

  // Read (and so type-checked) for every model type, used where the architecture has it.
  const bool attention_bias = f.optional_bool("attention_bias").value_or(false);
  const bool mlp_bias = f.optional_bool("mlp_bias").value_or(false);
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

  if (const json* q = f.find("quantization_config")) {
    if (!q->is_object()) f.must_be("quantization_config", *q, "an object");
    c.quantization_config = *q;
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
  return parse_model_config(config, source);
}

}  // namespace fp8llm
