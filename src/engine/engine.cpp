// The Engine of include/fp8llm/engine.h: plan -> stream into a backend (CPU or CUDA) -> run.
#include "fp8llm/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_kv_storage.h"
#include "backend/cpu/cpu_sharded_weight_store.h"
#include "backend/cpu/cpu_weight_store.h"
#include "backend/cpu/cpu_workspace.h"
#include "backend/cpu/thread_collectives.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/log.h"
#include "core/timeline.h"
#include "engine/device_model.h"
#include "engine/host_memory.h"
#include "engine/kv_budget.h"
#include "engine/llm_engine.h"
#include "engine/lora_slots.h"
#include "engine/state_dict.h"
#include "engine/weight_update.h"
#include "formats/checkpoint.h"
#include "formats/generation_config.h"
#include "formats/hf_config.h"
#include "loader/host_sink.h"
#include "loader/load_plan.h"
#include "loader/resolve.h"
#include "loader/shard_sink.h"
#include "lora/peft_adapter.h"
#include "model/llama_model.h"

#ifdef FP8LLM_HAVE_CUDA
#include "backend/cuda/cuda_load.h"
#include "backend/cuda/runtime/device.h"
#endif

namespace fp8llm {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

RunnerOptions with_lora(RunnerOptions r, const LoadOptions& o) {
  r.lora = o.max_loras > 0;
  return r;
}

// Views of tensors handed over in memory, checked against their own description. With
// `on_device`, every tensor is in the engine's device memory and its values are not read here.
std::vector<std::pair<std::string, TensorView>> views_of(const std::vector<WeightTensor>& tensors,
                                                         bool on_device = false) {
  std::vector<std::pair<std::string, TensorView>> out;
  for (const WeightTensor& t : tensors) {
    const std::optional<DType> dtype = dtype_from_name(t.dtype);
    FP8LLM_CHECK(dtype && (*dtype == DType::BF16 || *dtype == DType::F16 || *dtype == DType::F32),
                 "{}: dtype '{}' (expected BF16, F16 or F32)", t.name, t.dtype);
    for (int64_t d : t.shape)
      FP8LLM_CHECK(d > 0, "{}: shape {} has an empty dimension", t.name, shape_str(t.shape));
    FP8LLM_CHECK(t.data != nullptr, "{}: no data", t.name);
    if (on_device) {
      FP8LLM_CHECK(t.device != Device::Cpu,
                   "{}: in host memory, while the other factors are on the device", t.name);
    } else {
      FP8LLM_CHECK(t.device == Device::Cpu,
                   "{}: adapter factors must be in host memory (replace_lora also takes them from "
                   "the engine's device)",
                   t.name);
    }
    TensorView v;
    v.dtype = *dtype;
    v.shape = t.shape;
    v.data = static_cast<const std::byte*>(t.data);
    v.nbytes = static_cast<size_t>(num_elements(t.shape)) * dtype_size(*dtype);
    out.emplace_back(t.name, v);
  }
  return out;
}

// The options with the device's defaults filled in.
LoadOptions settled(LoadOptions o) {
  FP8LLM_CHECK(o.max_batch_tokens >= 0, "--max-batch-tokens {} must be positive",
               o.max_batch_tokens);
  FP8LLM_CHECK(o.max_seqs >= 1 && o.max_seqs <= 4096, "--max-seqs {} must be in [1, 4096]",
               o.max_seqs);
  FP8LLM_CHECK(o.max_context >= 0, "--max-context {} must be positive", o.max_context);
  if (o.max_batch_tokens == 0) o.max_batch_tokens = o.device == Device::Cuda ? 8192 : 2048;
  FP8LLM_CHECK(o.max_loras >= 0 && o.max_loras <= 64, "--max-loras {} must be in [0, 64]",
               o.max_loras);
  FP8LLM_CHECK(o.max_lora_rank >= 1 && o.max_lora_rank <= 512,
               "--max-lora-rank {} must be in [1, 512]", o.max_lora_rank);
  FP8LLM_CHECK(o.tensor_parallel >= 1, "--tensor-parallel {} must be at least 1",
               o.tensor_parallel);
  FP8LLM_CHECK(o.tensor_parallel == 1 || o.device == Device::Cpu,
               "--tensor-parallel {}: several ranks run on --device cpu only; --device cuda runs "
               "one rank",
               o.tensor_parallel);
  if (o.kv_cache_dtype == KvCacheDtype::Auto)
    o.kv_cache_dtype = o.device == Device::Cuda ? KvCacheDtype::BF16 : KvCacheDtype::F32;
  return o;
}

int64_t context_of(const ModelConfig& c, const LoadOptions& options) {
  return options.max_context > 0 ? std::min(options.max_context, c.max_position_embeddings)
                                 : c.max_position_embeddings;
}

LlamaModel model_for(const ModelConfig& config, const DeviceModel& device) {
  return device.shards ? LlamaModel(config, device.shards->dims()) : LlamaModel(config);
}

// Every rank's backend, activation memory and KV cache, rank 0 first.
std::vector<RankPart> rank_parts(const DeviceModel& d) {
  std::vector<RankPart> parts{{d.backend.get(), d.workspace.get(), d.kv.get()}};
  for (const RankDevice& p : d.peers)
    parts.push_back({p.backend.get(), p.workspace.get(), p.kv.get()});
  return parts;
}

// Every rank's KV cache, rank 0 first (null while the engine sleeps).
std::vector<KvStorage*> kv_caches(const DeviceModel& d) {
  std::vector<KvStorage*> kv{d.kv.get()};
  for (const RankDevice& p : d.peers) kv.push_back(p.kv.get());
  return kv;
}

ModelRunner runner_for(const LlamaModel& model, const DeviceModel& d, RunnerOptions options) {
  if (!d.shards) return ModelRunner(model, *d.backend, *d.workspace, *d.kv, std::move(options));
  return ModelRunner(model, rank_parts(d), *d.shards, *d.threads, *d.collectives,
                     std::move(options));
}

// The Engine over any device: the batching engine (llm_engine.h) for requests, and one
// incremental sequence of its own for logits() and feed(), both over one paged KV cache.
class BackendEngine final : public Engine {
 public:
  BackendEngine(ModelConfig config, DeviceModel device, LoadReport report,
                const LoadOptions& options, std::vector<int32_t> eos)
      : model_(model_for(config, device)),
        device_(std::move(device)),
        report_(std::move(report)),
        eos_(std::move(eos)),
        device_kind_(options.device),
        max_context_(context_of(model_.config(), options)),
        max_batch_tokens_(options.max_batch_tokens),
        max_seqs_(options.max_seqs),
        blocks_(device_.kv->view().spec.blocks, device_.kv->view().spec.block_size,
                options.prefix_caching),
        lora_(options.max_loras, options.max_lora_rank),
        runner_(runner_for(model_, device_, with_lora(device_.runner, options))),
        llm_(runner_, device_.picker.get(), blocks_,
             // The backends hold a logits row for each of max_seqs sequences (CUDA sizes its
             // workspace so).
             SchedulerConfig{.max_batch_tokens = options.max_batch_tokens,
                             .max_seqs = options.max_seqs,
                             .max_logit_rows = options.max_seqs},
             EngineLimits{.vocab_size = model_.config().vocab_size,
                          .max_context = max_context_,
                          .eos_token_ids = eos_},
             &lora_) {
    if (options.max_loras > 0) runner_.reserve_lora(options.max_loras, options.max_lora_rank);
  }

  void add_lora(const std::string& name, const std::filesystem::path& dir) override {
    LoraAdapter a = load_peft_adapter(config(), dir);
    lora_.add(name, std::move(a), read_text_file(dir / "adapter_config.json"));
  }
  void add_lora(const std::string& name, const std::string& config_json,
                const std::vector<WeightTensor>& tensors) override {
    lora_.add(name, parse_peft_adapter(config(), config_json, views_of(tensors), "lora " + name),
              config_json);
  }
  void replace_lora(const std::string& name, const std::vector<WeightTensor>& tensors) override {
    const bool on_device = !tensors.empty() && tensors[0].device != Device::Cpu;
    if (!on_device) {
      lora_.replace(name, parse_peft_adapter(config(), lora_.config_of(name), views_of(tensors),
                                             "lora " + name));
      return;
    }
    // A training loop's factors, already on the device: checked and packed there, without a
    // round trip through host memory.
    const std::vector<std::pair<std::string, TensorView>> views = views_of(tensors, true);
    FP8LLM_CHECK(tensors[0].device == device_kind_,
                 "{}: on the {} device, but this engine runs on the {}", tensors[0].name,
                 to_string(tensors[0].device), to_string(device_kind_));
    const PeftLayout layout = peft_layout(config(), lora_.config_of(name), views, "lora " + name);
    std::vector<LoraDeviceFactor> factors;
    std::vector<std::pair<int64_t, LinearKind>> modules;
    for (const PeftModule& m : layout.modules) {
      modules.emplace_back(m.layer, m.kind);
      for (const size_t i : {m.a, m.b}) {
        factors.push_back({.layer = m.layer,
                           .kind = m.kind,
                           .is_b = i == m.b,
                           .data = views[i].second.data,
                           .dtype = views[i].second.dtype,
                           .name = "lora " + name + ": " + views[i].first});
      }
    }
    lora_.replace_staged(name, layout.rank, modules,
                         [&](int slot) { runner_.stage_lora(slot, layout.rank, factors); });
  }
  void remove_lora(const std::string& name) override { lora_.remove(name); }
  std::vector<std::string> lora_names() const override { return lora_.names(); }

  const ModelConfig& config() const override { return model_.config(); }
  const LoadReport& load_report() const override { return report_; }
  int64_t vocab_size() const override { return model_.config().vocab_size; }
  int64_t max_context() const override { return max_context_; }
  const std::vector<int32_t>& eos_token_ids() const override { return eos_; }

  uint64_t add_request(GenerationRequest request, TokenCallback on_token) override {
    check_awake("add_request");
    return llm_.add_request(std::move(request), std::move(on_token));
  }
  void abort(uint64_t id) override { llm_.abort(id); }
  std::vector<RequestOutput> step() override { return llm_.step(); }
  bool has_unfinished() const override { return llm_.has_unfinished(); }
  EngineStats stats() const override { return llm_.stats(); }

  std::vector<float> logits(std::span<const int32_t> ids) override {
    reset();
    std::vector<float> out = feed(ids, true);
    reset();  // the blocks go back to the pool
    return out;
  }

  void reset() override {
    blocks_.release(session_blocks_);
    session_tokens_.clear();
  }

  std::vector<float> feed(std::span<const int32_t> ids, bool all_positions) override {
    FP8LLM_CHECK(!ids.empty(), "feed: no tokens");
    check_awake("feed");
    FP8LLM_CHECK(!llm_.has_unfinished(), "feed: requests are running (the sequence API waits)");
    const auto begin = static_cast<int64_t>(session_tokens_.size());
    const int64_t end = begin + static_cast<int64_t>(ids.size());
    FP8LLM_CHECK(end <= max_context_, "sequence of {} tokens exceeds the context of {} positions",
                 end, max_context_);
    for (int32_t id : ids) {
      FP8LLM_CHECK(id >= 0 && id < vocab_size(), "token id {} is out of range (vocabulary of {})",
                   id, vocab_size());
    }
    FP8LLM_CHECK(blocks_.blocks_needed(session_blocks_, begin, end) <= blocks_.free_blocks(),
                 "the KV cache ({} blocks of {} tokens) cannot hold a sequence of {} tokens "
                 "(raise --kv-memory)",
                 blocks_.usable_blocks(), blocks_.block_size(), end);
    blocks_.prepare_write(session_blocks_, begin, end);
    session_tokens_.insert(session_tokens_.end(), ids.begin(), ids.end());
    // In passes the size of a step (and, for every position's logits, of the rows a step has).
    const int64_t chunk =
        all_positions ? std::min(max_batch_tokens_, max_seqs_) : max_batch_tokens_;
    std::vector<float> out;
    for (int64_t at = begin; at < end; at += chunk) {
      const int64_t stop = std::min(end, at + chunk);
      Batch batch;
      batch.block_size = blocks_.block_size();
      const bool wanted = all_positions || stop == end;
      batch.add_sequence(session_tokens_, at, stop, session_blocks_,
                         !wanted         ? Batch::Logits::None
                         : all_positions ? Batch::Logits::All
                                         : Batch::Logits::Last);
      const Act logits = runner_.run(batch);
      if (logits.rows == 0) continue;
      const size_t have = out.size();
      out.resize(have + static_cast<size_t>(logits.rows * logits.cols));
      device_.backend->read(logits, out.data() + have);
    }
    return out;
  }

  int64_t position() const override { return static_cast<int64_t>(session_tokens_.size()); }

  std::vector<StateDictEntry> state_dict(StateDictForm form) const override {
    std::vector<StateDictEntry> out;
    for (StateDictItem& item : state_dict_items(config(), *device_.weights, form))
      out.push_back(std::move(item.entry));
    return out;
  }

  void read_state_dict_tensor(const std::string& name, StateDictForm form,
                              std::span<std::byte> out) const override {
    const std::vector<StateDictItem> items = state_dict_items(config(), *device_.weights, form);
    for (const StateDictItem& item : items) {
      if (item.entry.name == name) return read_state_dict_item(*device_.weights, item, form, out);
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
    for (StateDictItem& item : state_dict_items(config(), *device_.weights, form)) {
      tensor.bytes.resize(item.entry.nbytes);
      read_state_dict_item(*device_.weights, item, form, tensor.bytes);
      tensor.entry = std::move(item.entry);
      visit(tensor);
    }
  }

 private:
  std::vector<StateDictView> state_dict_views() override {
    FP8LLM_CHECK(sleep_level_ < 2,
                 "state_dict_views: asleep at level 2, the weights are in host memory (wake_up() "
                 "first)");
    std::vector<StateDictView> out;
    for (StateDictItem& item :
         state_dict_items(config(), *device_.weights, StateDictForm::Stored)) {
      const HeldMemory m = device_.weights->memory(item.spec);
      StateDictView v;
      v.device = m.on_device ? device_kind_ : Device::Cpu;
      const Shape& shape = item.entry.shape;
      if (item.is_scale) {
        v.data = m.scales;
        v.strides = {m.scale_row_stride, 1};
      } else {
        v.data = m.values;
        v.strides.assign(shape.size(), 1);
        for (size_t d = shape.size(); d-- > 1;) v.strides[d - 1] = v.strides[d] * shape[d];
      }
      v.entry = std::move(item.entry);
      out.push_back(std::move(v));
    }
    return out;
  }

  WeightUpdateReport update_weights(std::span<const WeightTensor> tensors) override {
    const auto start = std::chrono::steady_clock::now();
    FP8LLM_CHECK(sleep_level_ < 2,
                 "update_weights: asleep at level 2, the weights are in host memory (wake_up() "
                 "first)");
    check_idle("update_weights");
    const WeightUpdatePlan plan =
        plan_weight_update(config(), *device_.weights, device_kind_, tensors);
    WeightUpdateReport report{.tensors = plan.writes.size(),
                              .quantized = plan.quantized,
                              .bytes = plan.bytes,
                              .check_seconds = seconds_since(start)};
    device_.weights->write(plan.writes);
    // Keys and values computed with the old weights must not be reused.
    reset();
    llm_.reset_prefix_cache();
    report.seconds = seconds_since(start);
    return report;
  }

  void sleep(int level) override {
    FP8LLM_CHECK(level == 1 || level == 2,
                 "sleep: level {} (1: free the KV cache; 2: also move the weights to host memory)",
                 level);
    FP8LLM_CHECK(sleep_level_ == 0, "sleep: asleep already at level {} (wake_up() first)",
                 sleep_level_);
    check_idle("sleep");
    reset();
    blocks_.reset();
    device_.kv.reset();
    for (RankDevice& peer : device_.peers) peer.kv.reset();
    runner_.set_kv(kv_caches(device_));
    llm_.refresh_stats();
    sleep_level_ = 1;
    if (level == 2) {
      device_.weights->offload();
      sleep_level_ = 2;
    }
  }

  void wake_up() override {
    if (sleep_level_ == 2) {
      device_.weights->restore();
      sleep_level_ = 1;
    }
    if (sleep_level_ == 1) {
      device_.kv = device_.make_kv(kv_spec_);
      for (RankDevice& peer : device_.peers) peer.kv = peer.make_kv(kv_spec_);
      runner_.set_kv(kv_caches(device_));
      sleep_level_ = 0;
    }
  }

  int sleep_level() const override { return sleep_level_; }

  void reset_prefix_cache() override {
    llm_.reset_prefix_cache();
    llm_.refresh_stats();
  }

 private:
  void check_awake(std::string_view what) const {
    FP8LLM_CHECK(sleep_level_ == 0, "{}: the engine is asleep (level {}); call wake_up() first",
                 what, sleep_level_);
  }
  void check_idle(std::string_view what) const {
    const EngineStats s = llm_.stats();
    FP8LLM_CHECK(!llm_.has_unfinished(),
                 "{}: requests are queued or running ({} running, {} waiting); let them finish or "
                 "abort them first",
                 what, s.running, s.waiting);
  }

  LlamaModel model_;
  DeviceModel device_;
  LoadReport report_;
  std::vector<int32_t> eos_;
  Device device_kind_;
  KvCacheSpec kv_spec_ = device_.kv->view().spec;  // what wake_up() makes again
  int sleep_level_ = 0;
  int64_t max_context_;
  int64_t max_batch_tokens_;
  int64_t max_seqs_;
  BlockManager blocks_;
  LoraSlots lora_;
  ModelRunner runner_;
  LlmEngine llm_;
  std::vector<int32_t> session_tokens_;
  std::vector<int32_t> session_blocks_;
};

DeviceModel load_cpu_model(const LoadPlan& plan, const LoadOptions& options, StreamStats* stats,
                           Timeline* timeline, uint64_t* resident_bytes) {
  DeviceModel d;
  const Timeline::Step streaming(timeline, "stream weights");
  HostWeights weights = load_host_weights(plan, options.progress, stats);
  *resident_bytes = weights.resident_bytes();
  auto backend = std::make_unique<CpuBackend>(plan.config, std::move(weights));
  d.weights = std::make_unique<CpuWeightStore>(*backend);
  d.backend = std::move(backend);
  d.workspace = std::make_unique<CpuWorkspace>();
  d.make_kv = [](const KvCacheSpec& spec) { return std::make_unique<CpuKvStorage>(spec); };
  d.default_kv_bytes =
      default_cpu_kv_bytes(kv_cache_shape(plan.config, options), context_of(plan.config, options));
  return d;
}

// Tensor parallel on the CPU: every rank's shard from one pass over the checkpoint, a CPU
// backend per rank, the ranks' threads and the in-process collectives that join them.
DeviceModel load_cpu_ranks(const LoadPlan& plan, const LoadOptions& options, StreamStats* stats,
                           Timeline* timeline, uint64_t* resident_bytes) {
  DeviceModel d;
  d.shards = plan_shards(plan.config, options.tensor_parallel);
  const ShardPlan& shards = *d.shards;
  std::optional<Timeline::Step> streaming(std::in_place, timeline, "stream weights");
  std::vector<HostWeights> weights =
      load_sharded_host_weights(plan, shards, options.progress, stats);
  streaming.reset();
  const Timeline::Step setup(timeline, "ranks set-up");
  d.collectives = std::make_unique<ThreadCollectives>(shards.ranks());
  d.threads = std::make_unique<RankThreads>(shards.ranks());
  const auto make_kv = [](const KvCacheSpec& spec) { return std::make_unique<CpuKvStorage>(spec); };
  std::vector<CpuBackend*> held;
  *resident_bytes = 0;
  for (int r = 0; r < shards.ranks(); ++r) {
    HostWeights& w = weights[static_cast<size_t>(r)];
    *resident_bytes += w.resident_bytes();
    auto backend = std::make_unique<CpuBackend>(
        plan.config, std::move(w),
        CpuRank{.plan = shards, .rank = r, .collective = &d.collectives->rank(r)});
    held.push_back(backend.get());
    if (r == 0) {
      d.backend = std::move(backend);
      d.workspace = std::make_unique<CpuWorkspace>();
      d.make_kv = make_kv;
    } else {
      d.peers.push_back({.backend = std::move(backend),
                         .workspace = std::make_unique<CpuWorkspace>(),
                         .make_kv = make_kv});
    }
  }
  d.weights = std::make_unique<CpuShardedWeightStore>(shards, std::move(held));
  d.default_kv_bytes = default_cpu_kv_bytes(kv_cache_shape(shards.rank_config(0), options),
                                            context_of(plan.config, options));
  return d;
}

// The paged KV cache in what the options (or the device) allow; with tensor parallelism one of
// the same blocks on every rank, over the rank's KV heads.
void make_kv_cache(DeviceModel& d, const ModelConfig& config, const LoadOptions& options,
                   Timeline* timeline) {
  const Timeline::Step step(timeline, "kv cache");
  FP8LLM_CHECK(options.kv_memory_gib >= 0 && std::isfinite(options.kv_memory_gib),
               "--kv-memory {} must be a positive number of GiB", options.kv_memory_gib);
  KvCacheSpec spec = kv_cache_shape(d.shards ? d.shards->rank_config(0) : config, options);
  // By default no more than every sequence at its longest can use (a small model on a large GPU
  // would otherwise take the whole card).
  const auto context_blocks =
      static_cast<uint64_t>((context_of(config, options) + spec.block_size - 1) / spec.block_size);
  const uint64_t most_useful =
      (static_cast<uint64_t>(options.max_seqs) * context_blocks + 1) * spec.block_bytes();
  const uint64_t budget = options.kv_memory_gib > 0
                              ? static_cast<uint64_t>(options.kv_memory_gib * (1ull << 30))
                              : std::min(d.default_kv_bytes, most_useful);
  spec.blocks = kv_blocks_for(spec, budget);
  d.kv = d.make_kv(spec);
  for (RankDevice& peer : d.peers) peer.kv = peer.make_kv(spec);
}

}  // namespace

bool cuda_device_available() {
#ifdef FP8LLM_HAVE_CUDA
  return cuda::device_available();
#else
  return false;
#endif
}

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

std::unique_ptr<Engine> Engine::load(const LoadOptions& given) {
  const LoadOptions options = settled(given);
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
  // A configuration that does not divide fails first, before the load says where it will read
  // from (a pre-quantized copy has the same architecture as its checkpoint).
  if (options.tensor_parallel > 1 && std::filesystem::exists(options.model_dir / "config.json"))
    plan_shards(load_model_config(options.model_dir), options.tensor_parallel);
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
  DeviceModel device;
  uint64_t resident_bytes = 0;
  uint64_t peak_device_bytes = 0;
#ifdef FP8LLM_HAVE_CUDA
  if (options.device == Device::Cuda) {
    CudaLoad cuda = load_cuda_backend(plan, options, &stats, &timeline);
    resident_bytes = cuda.resident_bytes;
    peak_device_bytes = cuda.peak_device_bytes;
    device.backend = std::move(cuda.backend);
    device.weights = std::move(cuda.weights);
    device.workspace = std::move(cuda.workspace);
    device.picker = std::move(cuda.picker);
    device.make_kv = std::move(cuda.make_kv);
    device.default_kv_bytes = cuda.default_kv_bytes;
    device.runner = {.recorded_batch_sizes = cuda.recorded_batch_sizes,
                     .max_blocks_per_seq = cuda.max_blocks_per_seq};
  }
#endif
  if (!device.backend && options.tensor_parallel > 1)
    device = load_cpu_ranks(plan, options, &stats, &timeline, &resident_bytes);
  if (!device.backend) device = load_cpu_model(plan, options, &stats, &timeline, &resident_bytes);
  // The load's host peak is the weights'; the KV cache is counted apart (LoadReport::kv_bytes).
  const uint64_t process_peak = resident_memory().peak;
  make_kv_cache(device, config, options, &timeline);
  const KvCacheSpec& kv = device.kv->view().spec;

  LoadReport report;
  report.quantization = quantization_of(plan.scheme);
  report.bytes_read = stats.bytes_read;
  report.stream_seconds = stats.seconds;
  report.resident_bytes = resident_bytes;
  report.peak_device_bytes = peak_device_bytes;
  report.kv_cache_dtype = kv.dtype;
  report.kv_blocks = kv.blocks;
  report.kv_block_size = kv.block_size;
  // Every rank has a cache of its KV heads with the same blocks.
  report.kv_bytes = static_cast<uint64_t>(kv.blocks) * kv.block_bytes() * (1 + device.peers.size());
  for (const auto& t : plan.tensors) report.quantized_tensors += t.quantize.has_value();
  report.largest_tensor_bytes = plan.largest_tensor_bytes;
  report.process_peak_host_bytes = process_peak;
  report.peak_host_bytes =
      report.process_peak_host_bytes - std::min(report.process_peak_host_bytes, resident_before);
  report.seconds = seconds_since(start);
  report.steps = timeline.steps();
  std::vector<int32_t> eos = model_eos_token_ids(where.model_dir);
  return std::make_unique<BackendEngine>(std::move(config), std::move(device), std::move(report),
                                         options, std::move(eos));
}

}  // namespace fp8llm
