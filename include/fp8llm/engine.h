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
#include "fp8llm/request.h"
#include "fp8llm/sampling.h"
#include "fp8llm/state_dict.h"
#include "fp8llm/timeline.h"
#include "fp8llm/weight_update.h"

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
  // How the CUDA backend multiplies FP8 activations by FP8 weights: TensorCore (fast; passes of
  // up to 16 tokens on a GEMV that sums each 128 columns on the tensor cores and the rest in fp32,
  // larger ones through cuBLASLt, whose FP8 tensor cores keep about 14 bits while summing, about
  // 1e-4 relative error per GEMM) or Fp32 (every product summed in fp32 on CUDA cores, as the CPU
  // backend does: slow prefill, results within fp32 rounding of the CPU, the same at any batch
  // size). docs/FP8.md has the bounds.
  Fp8Gemm fp8_gemm = Fp8Gemm::TensorCore;
  // Positions one sequence may reach; 0: the model's max_position_embeddings.
  int64_t max_context = 0;
  // The paged KV cache. Auto: fp32 on the CPU (the exact reference), bf16 on CUDA.
  KvCacheDtype kv_cache_dtype = KvCacheDtype::Auto;
  // Memory for it in GiB; 0: on the CPU, what 16 full contexts take, at most 2 GiB; on CUDA, 90%
  // of the device memory left after the weights and the activations (vLLM's
  // gpu_memory_utilization, counted from what is free), at most what max_seqs full contexts take.
  double kv_memory_gib = 0;
  int64_t block_size = 16;     // positions per KV block
  bool prefix_caching = true;  // reuse the KV blocks of a prefix seen before
  // Tokens one step runs at most (decode tokens plus prompt chunks); 0: 2048 on the CPU, 8192 on
  // CUDA. Sequences running at once.
  int64_t max_batch_tokens = 0;
  int64_t max_seqs = 256;
  // CUDA: record decode steps as CUDA graphs (one per batch size of 1, 2, 4, .. 256, padded up).
  bool cuda_graphs = true;
  // Tensor parallelism: ranks that each hold a shard of every layer (column-parallel q/k/v and
  // gate/up, row-parallel o and down, the vocabulary split for the embedding and lm_head) and run
  // every step together under one scheduler. On the CPU the ranks are threads of this process
  // meeting in in-process collectives; the configuration must divide (an Error names the field).
  // KV memory (kv_memory_gib) is per rank. Not with LoRA adapters.
  int tensor_parallel = 1;
  // LoRA adapters at once (0: none; the LoRA ops then cost nothing), and their largest rank.
  int max_loras = 0;
  int64_t max_lora_rank = 16;
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
  // The KV cache as set up after the weights: its element type, blocks and bytes (of every rank
  // together with tensor parallelism: each holds the same blocks for its KV heads).
  KvCacheDtype kv_cache_dtype = KvCacheDtype::F32;
  int64_t kv_blocks = 0;
  int64_t kv_block_size = 0;
  uint64_t kv_bytes = 0;
  // Where the time went: resolving and planning, device set-up, streaming, finishing. Steps on
  // other threads overlap the streaming where set-up was hidden behind it.
  std::vector<TimedStep> steps;
};

struct GenerationOptions {
  int max_tokens = 128;
  SamplingParams sampling;
  std::string lora;  // the adapter to apply, or empty
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
  // Positions one sequence may reach (LoadOptions::max_context, or the model's).
  virtual int64_t max_context() const = 0;
  // The tokens that end a sample unless it ignores them (config.json, generation_config.json).
  virtual const std::vector<int32_t>& eos_token_ids() const = 0;

  // --- Many sequences (continuous batching) ---
  // Queues a request; any thread. An Error names the field at fault (nothing is queued then): an
  // empty prompt or one that leaves no room in the context, a token id outside the vocabulary,
  // a sampling parameter out of range, a sequence the KV cache cannot hold alone. `on_token` is
  // called on the thread running step() with every new token of every sample.
  virtual uint64_t add_request(GenerationRequest request, TokenCallback on_token = {}) = 0;
  // Ends a request's samples (FinishReason::Cancelled) and frees its KV blocks; any thread.
  virtual void abort(uint64_t id) = 0;
  // One scheduler step: the requests that changed, as their OutputKind asks (a finished one is
  // reported once with finished set, then forgotten).
  virtual std::vector<RequestOutput> step() = 0;
  virtual bool has_unfinished() const = 0;
  virtual EngineStats stats() const = 0;
  // Runs `requests` (and whatever else is queued) to the end; their outputs in the given order
  // (each request's OutputKind is set to FinalOnly). `progress(done, total)` after each step that
  // finished some of them.
  std::vector<RequestOutput> generate(std::vector<GenerationRequest> requests,
                                      const std::function<void(size_t, size_t)>& progress = {});

  // --- LoRA adapters (LoadOptions::max_loras > 0; docs/FP8.md, "LoRA") ---
  // Adds an adapter under `name`, from a PEFT directory (adapter_config.json +
  // adapter_model.safetensors) or from adapter_config.json's text and the factors in memory (PEFT
  // names). Requests name it in GenerationRequest::lora from the next step on. Any thread.
  virtual void add_lora(const std::string& name, const std::filesystem::path& dir);
  virtual void add_lora(const std::string& name, const std::string& adapter_config_json,
                        const std::vector<WeightTensor>& tensors);
  // New factors for an adapter already added, of the same modules and rank (a training loop's
  // per-step sync): checked whole before anything changes; requests using it, running ones too,
  // see them from the next step on. Any thread.
  virtual void replace_lora(const std::string& name, const std::vector<WeightTensor>& tensors);
  // An Error while unfinished requests use it. Any thread.
  virtual void remove_lora(const std::string& name);
  virtual std::vector<std::string> lora_names() const;

  // --- One sequence ---
  // Logits of every position of `ids` as a fresh sequence: [ids.size() * vocab] fp32.
  virtual std::vector<float> logits(std::span<const int32_t> ids) = 0;

  // Incremental use: reset() starts a new sequence; feed() appends tokens and returns the logits of
  // every fed position (all_positions) or of the last one. Not while requests run.
  virtual void reset() = 0;
  virtual std::vector<float> feed(std::span<const int32_t> ids, bool all_positions = false) = 0;
  virtual int64_t position() const = 0;

  // Generates from `prompt` (a fresh sequence) through the batching engine as a request of its
  // own; it stops at options.stop_token_ids only. `on_token` is called with each new token as it
  // is produced; returning false stops generation ("cancelled").
  GenerationResult generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                            const std::function<bool(int32_t)>& on_token = {});

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
  // The stored state dict as views of the memory the backend computes from (no copy), in the
  // listing's order: HostWeights on the CPU, the weight arena on CUDA. They stay valid and see
  // every update_weights; on CUDA, sleep(2) frees that memory (wake_up puts the weights elsewhere,
  // so views must be taken again).
  virtual std::vector<StateDictView> state_dict_views() = 0;

  // --- Live weights (fp8llm/weight_update.h) ---
  // Writes new values into the loaded weights where they are: an FP8 projection is quantized
  // again with the quantizer a load uses (same scheme, same bytes as loading those values), into
  // the memory it already has, so no pointer moves (recorded CUDA graphs stay valid); every other
  // tensor is converted to the dtype it is held in. Everything is checked before anything is
  // written (names, duplicates, shapes, dtypes, where the data is, NaN and infinity), so a failed
  // call changes nothing; the Error names the tensor. Then the prefix cache is cleared and the
  // incremental sequence is reset (their keys and values came from the old weights).
  // Refused while requests are queued or running (their KV caches hold keys of the old weights:
  // let them finish or abort them first) and while asleep at level 2.
  virtual WeightUpdateReport update_weights(std::span<const WeightTensor> tensors) = 0;

  // Gives memory back to a trainer sharing the device. Level 1 frees the KV cache (its contents
  // and the prefix cache are lost); level 2 also moves the weights to host memory (CUDA: pinned
  // memory; the CPU backend's weights are in host memory already, so there level 2 is level 1).
  // Refused while requests are queued or running, or when asleep already. Nothing runs until
  // wake_up(), which puts back exactly what was there: the same weights bit for bit and a new,
  // empty KV cache of the same size (recorded CUDA graphs are recorded again).
  virtual void sleep(int level) = 0;
  virtual void wake_up() = 0;
  virtual int sleep_level() const = 0;  // 0: awake

  // Forgets every cached prefix, so that later requests compute their keys and values afresh
  // (update_weights does so itself, and an adapter replaced in place gets new cache keys).
  // Sequences that are running keep their blocks. Call it between steps, from the thread that
  // steps.
  virtual void reset_prefix_cache() = 0;
};

// Whether this build has the CUDA backend and a CUDA device is present.
bool cuda_device_available();

}  // namespace fp8llm
