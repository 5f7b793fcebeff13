// The Engine of include/fp8llm/engine.h: plan -> stream into a backend (CPU or CUDA) -> run.
#include "fp8llm/engine.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timeline.h"
#include "engine/host_memory.h"
#include "engine/sampler.h"
#include "engine/state_dict.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "loader/host_sink.h"
#include "loader/load_plan.h"
#include "loader/resolve.h"
#include "model/llama_model.h"

#ifdef FP8LLM_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace fp8llm {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The Engine over any Backend: the model definition drives the backend's ops.
class BackendEngine final : public Engine {
 public:
  BackendEngine(ModelConfig config, std::unique_ptr<Backend> backend, LoadReport report)
      : model_(std::move(config)), backend_(std::move(backend)), report_(std::move(report)) {}

  const ModelConfig& config() const override { return model_.config(); }
  const LoadReport& load_report() const override { return report_; }
  int64_t vocab_size() const override { return model_.config().vocab_size; }
  int64_t context_size() const override { return backend_->cache_capacity(); }

  std::vector<float> logits(std::span<const int32_t> ids) override {
    reset();
    return feed(ids, true);
  }

  void reset() override {
    backend_->reset_cache();
    position_ = 0;
  }

  std::vector<float> feed(std::span<const int32_t> ids, bool all_positions) override {
    const int64_t rows = all_positions ? static_cast<int64_t>(ids.size()) : 1;
    std::vector<float> out(static_cast<size_t>(rows * vocab_size()));
    model_.forward(*backend_, ids, position_, out, all_positions);
    position_ += static_cast<int64_t>(ids.size());
    return out;
  }

  int64_t position() const override { return position_; }

  GenerationResult generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                            const std::function<bool(int32_t)>& on_token) override {
    FP8LLM_CHECK(!prompt.empty(), "generate: the prompt is empty");
    FP8LLM_CHECK(options.max_tokens >= 0, "max_tokens must be >= 0 (got {})", options.max_tokens);
    GenerationResult result;
    Sampler sampler(options.sampling);
    std::vector<int32_t> history(prompt.begin(), prompt.end());
    // Greedy decoding without a repetition penalty needs only the most likely token: the backend
    // finds it where the logits are (on the GPU: two numbers copied instead of the vocabulary).
    const bool greedy =
        options.sampling.temperature == 0.0f && options.sampling.repetition_penalty == 1.0f;
    // Sampling that needs no history is drawn there too, where the backend can.
    const bool on_device =
        greedy || (sampler.draws_from_logits_alone() && backend_->samples_on_device());
    const auto next_token = [&](std::span<const int32_t> ids) -> SampledToken {
      if (!on_device) return sampler.sample(feed(ids, false), history);
      const Act logits = model_.forward_logits(*backend_, ids, position_, false);
      position_ += static_cast<int64_t>(ids.size());
      const TopToken t = greedy
                             ? backend_->top_token(logits)
                             : backend_->sample_token(logits, sampler.shape(), sampler.uniform());
      return {t.id, t.logprob};
    };
    reset();
    auto t0 = std::chrono::steady_clock::now();
    SampledToken tok = next_token(prompt);
    result.prompt_seconds = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    result.finish_reason = FinishReason::Length;
    for (int i = 0; i < options.max_tokens; ++i) {
      result.tokens.push_back(tok.id);
      result.logprobs.push_back(tok.logprob);
      history.push_back(tok.id);
      if (on_token && !on_token(tok.id)) {
        result.finish_reason = FinishReason::Cancelled;
        break;
      }
      if (std::find(options.stop_token_ids.begin(), options.stop_token_ids.end(), tok.id) !=
          options.stop_token_ids.end()) {
        result.finish_reason = FinishReason::Stop;
        break;
      }
      if (i + 1 == options.max_tokens) break;
      if (position_ >= backend_->cache_capacity()) {
        result.finish_reason = FinishReason::Length;
        break;
      }
      const int32_t next[1] = {tok.id};
      tok = next_token(next);
    }
    result.generate_seconds = seconds_since(t0);
    return result;
  }

  std::vector<StateDictEntry> state_dict(StateDictForm form) const override {
    std::vector<StateDictEntry> out;
    for (StateDictItem& item : state_dict_items(config(), *backend_, form))
      out.push_back(std::move(item.entry));
    return out;
  }

  void read_state_dict_tensor(const std::string& name, StateDictForm form,
                              std::span<std::byte> out) const override {
    const std::vector<StateDictItem> items = state_dict_items(config(), *backend_, form);
    for (const StateDictItem& item : items) {
      if (item.entry.name == name) return read_state_dict_item(*backend_, item, form, out);
    }
    const bool scale = name.ends_with("_scale") || name.ends_with("_scale_inv");
    fail("tensor '{}' is not in the {} state dict of this {} model ({} tensors){}", name,
         form == StateDictForm::Stored ? "stored" : "dequantized", to_string(report_.quantization),
         items.size(),
         scale && form == StateDictForm::Dequantized ? "; scales are in the stored form only" : "");
  }

  void visit_state_dict(StateDictForm form,
                        const std::function<void(const StateDictTensor&)>& visit) const override {
    StateDictTensor tensor;
    for (StateDictItem& item : state_dict_items(config(), *backend_, form)) {
      tensor.bytes.resize(item.entry.nbytes);
      read_state_dict_item(*backend_, item, form, tensor.bytes);
      tensor.entry = std::move(item.entry);
      visit(tensor);
    }
  }

 private:
  LlamaModel model_;
  std::unique_ptr<Backend> backend_;
  LoadReport report_;
  int64_t position_ = 0;
};

}  // namespace

StateDictTensor Engine::state_dict_tensor(const std::string& name, StateDictForm form) const {
  StateDictTensor t;
  for (StateDictEntry& e : state_dict(form)) {
    if (e.name == name) {
      t.entry = std::move(e);
      break;
    }
  }
  // An unknown name is left to read_state_dict_tensor, which says so.
  t.bytes.resize(t.entry.nbytes);
  read_state_dict_tensor(name, form, t.bytes);
  return t;
}

std::unique_ptr<Engine> Engine::load(const LoadOptions& options) {
#ifndef FP8LLM_HAVE_CUDA
  FP8LLM_CHECK(options.device == Device::Cpu,
               "--device '{}' is not available: this build has the CPU backend only (use --device "
               "cpu, or build with the CUDA toolkit for --device cuda)",
               to_string(options.device));
#endif
  const auto start = std::chrono::steady_clock::now();
  Timeline timeline(start);
  // The load's peak host memory is counted from here: whatever the process holds already is not
  // the load's.
  reset_peak_resident();
  const uint64_t resident_before = resident_memory().current;
  std::optional<Timeline::Step> planning(std::in_place, &timeline, "resolve and plan");
  const Resolution where = resolve_load({.model_dir = options.model_dir,
                                         .quantization = options.quantization,
                                         .registry = options.registry,
                                         .offline = options.offline,
                                         .cache_dir = options.cache_dir,
                                         .quantization_config = options.quantization_config});
  ModelConfig config = load_model_config(where.model_dir);
  const Checkpoint checkpoint = Checkpoint::open(where.model_dir);
  const LoadPlan plan = build_load_plan(checkpoint, config, where.scheme);
  planning.reset();
  StreamStats stats;
  std::unique_ptr<Backend> backend;
  uint64_t resident_bytes = 0;
  [[maybe_unused]] uint64_t peak_device_bytes = 0;
#ifdef FP8LLM_HAVE_CUDA
  if (options.device == Device::Cuda) {
    CudaLoad cuda = load_cuda_backend(plan, options, &stats, &timeline);
    backend = std::move(cuda.backend);
    resident_bytes = cuda.resident_bytes;
    peak_device_bytes = cuda.peak_device_bytes;
  }
#endif
  if (!backend) {
    const Timeline::Step streaming(&timeline, "stream weights");
    HostWeights weights = load_host_weights(plan, options.progress, &stats);
    resident_bytes = weights.resident_bytes();
    backend = std::make_unique<CpuBackend>(config, std::move(weights),
                                           CpuBackendOptions{options.max_context});
  }

  LoadReport report;
  report.quantization = quantization_of(plan.scheme);
  report.bytes_read = stats.bytes_read;
  report.stream_seconds = stats.seconds;
  report.resident_bytes = resident_bytes;
  report.peak_device_bytes = peak_device_bytes;
  for (const auto& t : plan.tensors) report.quantized_tensors += t.quantize.has_value();
  report.largest_tensor_bytes = plan.largest_tensor_bytes;
  report.process_peak_host_bytes = resident_memory().peak;
  report.peak_host_bytes =
      report.process_peak_host_bytes - std::min(report.process_peak_host_bytes, resident_before);
  report.seconds = seconds_since(start);
  report.steps = timeline.steps();
  return std::make_unique<BackendEngine>(std::move(config), std::move(backend), std::move(report));
}

}  // namespace fp8llm
