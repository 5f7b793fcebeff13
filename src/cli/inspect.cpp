// `fp8llm inspect MODEL_DIR`: what a checkpoint holds and what loading it with a quantization
// scheme does — the architecture, the load plan, bytes before and after, and for each quantized
// tensor its scale range and the error quantization introduces (dequantize(quantize(w)) vs w).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/format.h"
#include "core/error.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "loader/load_plan.h"
#include "loader/value_checks.h"
#include "loader/weight_stream.h"
#include "quant/quantizer.h"

namespace fp8llm::cli {
namespace {

struct Options {
  std::string model_dir;
  std::string quantization = "fp8-block";
};

// Quantizes each streamed projection and measures what it did; keeps nothing.
class StatsSink : public WeightSink {
 public:
  void consume(const PlannedTensor& t, const TensorView& source) override {
    // What a load would refuse, inspect refuses too.
    check_planned_tensor(t, source);
    if (!t.quantize) return;
    const int64_t n = t.spec.shape[0], k = t.spec.shape[1];
    const QuantizedTensor q = quantize_weight(*t.quantize, source, t.spec.name);
    std::vector<float> original(static_cast<size_t>(n * k)), restored(original.size());
    to_f32(source.dtype, source.data, original.data(), original.size());
    dequantize_weight(*t.quantize, q.q.as<uint8_t>(), q.scale.as<float>(), n, k, restored.data());
    double num = 0, den = 0;
    for (size_t i = 0; i < original.size(); ++i) {
      const double d = static_cast<double>(restored[i]) - original[i];
      num += d * d;
      den += static_cast<double>(original[i]) * original[i];
    }
    const float* s = q.scale.as<float>();
    const auto [lo, hi] = std::minmax_element(s, s + q.scale.numel());
    fmt::print("  {:<48} {:>14} {:>10.3e} {:>10.3e} {:>10.3e}\n", t.spec.name,
               shape_str(t.spec.shape), *lo, *hi, den > 0 ? std::sqrt(num / den) : 0.0);
    worst_ = std::max(worst_, den > 0 ? std::sqrt(num / den) : 0.0);
  }
  double worst() const { return worst_; }

 private:
  double worst_ = 0;
};

void run_inspect(const Options& o) {
  const Quantization q = parse_quantization(o.quantization);
  const ModelConfig c = load_model_config(o.model_dir);
  // auto inspects what loading this directory on the fly does: an FP8 checkpoint as stored, else
  // fp8-block (inspect looks at the checkpoint given, not at registered copies).
  const std::optional<Fp8Scheme> scheme =
      q == Quantization::Auto ? std::optional(Fp8Scheme::Block) : scheme_of(q);
  const Checkpoint checkpoint = Checkpoint::open(o.model_dir);
  const LoadPlan plan = build_load_plan(checkpoint, c, scheme);

  fmt::print("model        {} ({}), {} in {} file(s)\n", o.model_dir, c.architecture,
             human_bytes(checkpoint.total_bytes()), checkpoint.files().size());
  fmt::print(
      "architecture {}: {} layers, hidden {}, MLP {}, {} heads / {} KV heads, head_dim {}, "
      "vocab {}\n",
      c.model_type, c.num_layers, c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads,
      c.head_dim, c.vocab_size);
  fmt::print(
      "             RoPE {} (theta {}), rms_norm_eps {}, tied embeddings {}, qkv bias {}, "
      "q/k norm {}\n",
      c.rope.type == RopeType::Llama3 ? "llama3" : "default", c.rope.theta, c.rms_norm_eps,
      c.tie_word_embeddings, c.qkv_bias, c.qk_norm);
  fmt::print("quantization {}{}\n\n", o.quantization,
             q != Quantization::Auto ? ""
             : plan.prequant         ? fmt::format(" (as stored: {})", plan.prequant->description)
                                     : std::string(" (fp8-block)"));

  fmt::print("tensors (file order):\n");
  size_t quantized = 0;
  for (const auto& t : plan.tensors) {
    const std::string target =
        t.quantize
            ? fmt::format(
                  "F8_E4M3 + F32 scales {}",
                  shape_str(weight_scale_shape(*t.quantize, t.spec.shape[0], t.spec.shape[1])))
            : std::string(dtype_name(t.source.info->dtype));
    fmt::print("  {:<48} {:>5} {:>14} -> {:<32} {:>10} -> {:>10}\n", t.spec.name,
               dtype_name(t.source.info->dtype), shape_str(t.spec.shape), target,
               human_bytes(t.source.info->nbytes), human_bytes(t.resident_bytes));
    quantized += t.quantize.has_value();
  }
  for (const auto& name : plan.ignored) fmt::print("  {:<48} (not used by the model)\n", name);
  fmt::print("\nbytes        {} read -> {} resident ({:.1f}%), {} of {} tensors quantized\n",
             human_bytes(plan.source_bytes), human_bytes(plan.resident_bytes),
             100.0 * static_cast<double>(plan.resident_bytes) /
                 static_cast<double>(std::max<uint64_t>(plan.source_bytes, 1)),
             quantized, plan.tensors.size());
  if (!scheme) {
    // Nothing is quantized, but every value is read and checked, as a load would.
    StatsSink sink;
    stream_weights(plan, sink);
    return;
  }

  fmt::print("\nquantization error per tensor ({}):\n", fp8_scheme_name(*scheme));
  fmt::print("  {:<48} {:>14} {:>10} {:>10} {:>10}\n", "tensor", "shape", "scale min", "scale max",
             "rel err");
  StatsSink sink;
  stream_weights(plan, sink);
  fmt::print("worst relative error (L2 of dequantize(quantize(w)) - w over L2 of w): {:.3e}\n",
             sink.worst());
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  auto* cmd =
      app.add_subcommand("inspect", "Show a checkpoint's architecture, tensors and FP8 plan");
  cmd->add_option("model_dir", opts->model_dir, "Model directory (config.json + *.safetensors)")
      ->required();
  cmd->add_option("--quantization,-q", opts->quantization,
                  "fp8-row | fp8-block | none | auto (an FP8 checkpoint as stored, else "
                  "fp8-block)")
      ->capture_default_str();
  cmd->callback([opts] { run_inspect(*opts); });
}

}  // namespace fp8llm::cli
