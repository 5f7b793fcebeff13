// fp8llm's C++ API: load a Hugging Face checkpoint (quantizing its projections to FP8 as the
// bytes stream in), run the model on token ids, read logits, generate.
//
//   fp8llm::LoadOptions opts{.model_dir = "models/llama", .quantization =
//   fp8llm::Quantization::Fp8Block}; auto engine = fp8llm::Engine::load(opts); auto result =
//   engine->generate(prompt_ids, {.max_tokens = 32});
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fp8llm/modes.h"
#include "fp8llm/sampling.h"
#include "fp8llm/state_dict.h"
#include "fp8llm/timeline.h"

namespace fp8llm {

struct ModelConfig;

struct LoadOptions {
  std::filesystem::path model_dir;
  // A checkpoint that is already FP8 loads as stored whatever this says; see src/loader/resolve.h
  // for the order the sources are tried in.
  Quantization quantization = Quantization::Fp8Block;
  // A quantization config as JSON text, naming the mode instead (empty: none): a torchao
  // Float8DynamicActivationFloat8WeightConfig as config_to_dict writes it (PerRow -> fp8-row,
  // [PerBlock([1, 128]), PerBlock([128, 128])] -> fp8-block), bare or wrapped as vLLM's
  // hf_overrides, or an fp8 / compressed-tensors quantization_config; see
  // src/loader/quantization_request.h. `quantization` must then be Auto or the same mode.
  std::string quantization_config;
  // Registry of pre-quantized copies (empty: $FP8LLM_REGISTRY or
  // $XDG_CONFIG_HOME/fp8llm/registry.json).
  std::filesystem::path registry;
  // Quantize once into `cache_dir` (empty: $XDG_CACHE_HOME/fp8llm) instead of on the fly.
  bool offline = false;
  std::filesystem::path cache_dir;
  Device device = Device::Cpu;
  // How the CUDA backend multiplies FP8 activations by FP8 weights when a pass has several tokens:
  // TensorCore (fast; Hopper's FP8 tensor cores keep about 14 bits while summing, about 1e-4
  // relative error per GEMM) or Fp32 (every product summed in fp32 on CUDA cores, as the CPU
  // backend does: slow prefill, results within fp32 rounding of the CPU). Decoding one token
  // always sums in fp32.
  Fp8Gemm fp8_gemm = Fp8Gemm::TensorCore;
  // Positions the KV cache holds; 0: the model's max_position_embeddings.
  int64_t max_context = 0;
  // Called as weights stream in (bytes read so far, bytes in total).
  std::function<void(uint64_t, uint64_t)> progress;
};

// What loading did, for the summary a user sees.
struct LoadReport {
  Quantization quantization = Quantization::None;  // in effect: None, Fp8Row or Fp8Block
  double seconds = 0;           // all of Engine::load (resolution, plan, device setup, streaming)
  double stream_seconds = 0;    // from the first weight byte read to the last weight in place
  uint64_t bytes_read = 0;      // checkpoint bytes read
  uint64_t resident_bytes = 0;  // weight bytes held after loading
  uint64_t quantized_tensors = 0;
  uint64_t largest_tensor_bytes = 0;  // the largest single tensor in the checkpoint
  // Host memory, from the process's resident set (Linux VmRSS and VmHWM). `peak_host_bytes` is
  // what the load itself added at its peak: the resident set's peak during Engine::load minus the
  // resident set just before it began, so the libraries, runtimes and data the process already
  // held are not counted (this is what "resident + largest tensor + 64 MiB" bounds).
  // `process_peak_host_bytes` is the whole process's resident set at that peak. Engine::load
  // resets the kernel's peak mark (VmHWM) as it starts; where the kernel does not allow that,
  // the process's lifetime peak stands in, and both can only read high.
  uint64_t peak_host_bytes = 0;
  uint64_t process_peak_host_bytes = 0;
  uint64_t peak_device_bytes = 0;  // device memory the load used at its peak (0: CPU backend)
  // Where the time went: resolving and planning, device set-up, streaming, finishing. Steps on
  // other threads overlap the streaming where set-up was hidden behind it.
  std::vector<TimedStep> steps;
};

struct GenerationOptions {
  int max_tokens = 128;
  SamplingParams sampling;
  // Generation stops after producing any of these (the stop token is included in the output).
  std::vector<int32_t> stop_token_ids;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated tokens (not the prompt)
  std::vector<float> logprobs;  // log-probability of each generated token
  FinishReason finish_reason = FinishReason::Length;
  double prompt_seconds = 0;
  double generate_seconds = 0;
};

class Engine {
 public:
  static std::unique_ptr<Engine> load(const LoadOptions& options);
  virtual ~Engine() = default;

  virtual const ModelConfig& config() const = 0;
  virtual const LoadReport& load_report() const = 0;
  virtual int64_t vocab_size() const = 0;
  // Positions one sequence may take (LoadOptions::max_context, at most max_position_embeddings):
  // the prompt and everything generated after it.
  virtual int64_t context_size() const = 0;

  // Logits of every position of `ids` as a fresh sequence: [ids.size() * vocab] fp32.
  virtual std::vector<float> logits(std::span<const int32_t> ids) = 0;

  // Incremental use: reset() starts a new sequence; feed() appends tokens and returns the logits of
  // every fed position (all_positions) or of the last one.
  virtual void reset() = 0;
  virtual std::vector<float> feed(std::span<const int32_t> ids, bool all_positions = false) = 0;
  virtual int64_t position() const = 0;

  // Generates from `prompt` (a fresh sequence). `on_token` is called with each new token as it is
  // produced; returning false stops generation ("cancelled").
  virtual GenerationResult generate(std::span<const int32_t> prompt,
                                    const GenerationOptions& options,
                                    const std::function<bool(int32_t)>& on_token = {}) = 0;

  // The live weights under their Hugging Face names (fp8llm/state_dict.h), in a stable order:
  // embedding, each layer's tensors (a projection's scale right after it), final norm, lm_head.
  virtual std::vector<StateDictEntry> state_dict(
      StateDictForm form = StateDictForm::Stored) const = 0;
  // Copies one tensor of the listing into `out` (exactly its nbytes). An Error names a tensor the
  // listing does not hold.
  virtual void read_state_dict_tensor(const std::string& name, StateDictForm form,
                                      std::span<std::byte> out) const = 0;
  // The same into a new buffer.
  StateDictTensor state_dict_tensor(const std::string& name,
                                    StateDictForm form = StateDictForm::Stored) const;
  // Hands every tensor of the listing to `visit`, in order, one at a time through one buffer.
  virtual void visit_state_dict(StateDictForm form,
                                const std::function<void(const StateDictTensor&)>& visit) const = 0;
};

}  // namespace fp8llm
