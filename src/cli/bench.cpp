// `fp8llm bench --model DIR [--device cpu|cuda]`: how fast the model loads (seconds, GB/s of
// checkpoint bytes, resident and peak memory), how fast one prefill of --prompt-tokens random ids
// runs, and how fast greedy decoding runs, each beside its floor: decoding reads every resident
// weight byte and its sequence's keys and values once per token, so (bytes read per token) /
// (memory bandwidth) bounds a step (at 32k keys of context the keys and values are a third).
//
// `--stream-only` (CUDA builds) times the disk -> device path alone (loading/stream_only.h), so the
// loader's throughput can be measured without the backend.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cli/bench_serving.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/load_options.h"
#include "core/error.h"
#include "engine/sampler.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "fp8llm/engine.h"
#include "loader/load_plan.h"

#ifdef FP8LLM_HAVE_CUDA
#include "backend/cuda/loading/chunk_stream.h"
#include "backend/cuda/loading/stream_only.h"
#include "backend/cuda/runtime/device.h"
#endif

namespace fp8llm::cli {
namespace {

struct Options {
  EngineFlags engine;
  int prompt_tokens = 512;
  int decode_tokens = 128;
  // Memory bandwidth of the decode floor; 0: the device's (CUDA: an H100's HBM3); the CPU has none
  // by default, since one machine's DRAM differs from the next's by several times.
  double bandwidth_gbs = 0;
  uint64_t seed = 1;
  SamplingParams sampling;  // greedy unless a temperature is given
  bool stream_only = false;
  int repeat = 1;
  // The streamer's settings; 0 (a share < 0) keeps DeviceStreamOptions' default, so that the
  // defaults live in one place.
  size_t staging_buffers = 0;
  size_t readers = 0;
  size_t buffer_mib = 0;
  size_t piece_mib = 0;
  bool pread = false;
  double pread_share = -1;
  size_t read_slots = 0;
  int loads = 2;
  ServingBench serving;
};

// H100 SXM HBM3, the GPU the floors in docs/PERFORMANCE.md are for.
constexpr double kH100GBs = 3000;

double gbs(uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0.0;
}

#ifdef FP8LLM_HAVE_CUDA
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run_stream_only(const Options& o) {
  FP8LLM_CHECK(cuda::device_available(), "--stream-only: no CUDA device found");
  const LoadOptions load = engine_load_options(o.engine);
  // auto streams as a load without a registered copy would: fp8-block (a checkpoint already FP8
  // is planned as stored whatever is asked).
  const std::optional<Fp8Scheme> scheme = load.quantization == Quantization::Auto
                                              ? std::optional(Fp8Scheme::Block)
                                              : scheme_of(load.quantization);
  const ModelConfig config = load_model_config(o.engine.model_dir);
  const Checkpoint checkpoint = Checkpoint::open(o.engine.model_dir);
  const LoadPlan plan = build_load_plan(checkpoint, config, scheme);
  cuda::DeviceStreamOptions so;
  so.register_files = !o.pread;
  if (o.staging_buffers > 0) so.staging_buffers = o.staging_buffers;
  if (o.buffer_mib > 0) so.chunk_bytes = o.buffer_mib << 20;
  if (o.readers > 0) so.reader_threads = o.readers;
  if (o.piece_mib > 0) so.piece_bytes = o.piece_mib << 20;
  if (o.pread_share >= 0) so.pread_share = o.pread_share;
  if (o.read_slots > 0) so.read_slots = o.read_slots;
  fmt::print("device: {}\n", cuda::device_description());
  const bool registered = so.register_files && cuda::registered_streaming_available(plan);
  fmt::print("stream-only {} ({}): {} tensors, {}; ", o.engine.model_dir, o.engine.quantization,
             plan.tensors.size(), human_bytes(plan.source_bytes));
  fmt::print(
      "chunks of {} MiB, {} of them read into {} page-locked slots by {} threads in {} MiB "
      "pieces, {}\n",
      so.chunk_bytes >> 20, registered ? so.pread_share : 1.0, so.read_slots, so.reader_threads,
      so.piece_bytes >> 20,
      registered ? "the others registered in place" : "none registered in place");
  for (int r = 0; r < o.repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const cuda::StreamOnlyResult streamed = cuda::stream_only(plan, so);
    const cuda::DeviceStreamStats& s = streamed.stats;
    const double total = seconds_since(t0);
    fmt::print(
        "  run {}: {:.3f} s streaming ({:.2f} GB/s of checkpoint bytes), {:.3f} s with the "
        "arena allocation; {} direct, {} device staging, {} through the read slots\n",
        r + 1, s.stream.seconds, gbs(s.stream.bytes_read, s.stream.seconds), total,
        human_bytes(streamed.direct_bytes), human_bytes(s.staging_device_bytes),
        human_bytes(s.pread_bytes));
  }
}
#endif

// The load's summary, then one line per step of it: when it started and how long it took.
void print_load(const LoadReport& load, int index) {
  fmt::print(
      "load {}     {:.3f} s, {} read ({:.2f} GB/s; weights streamed in {:.3f} s, {:.2f} GB/s), {} "
      "resident, peak host during load {} (process {})",
      index, load.seconds, human_bytes(load.bytes_read), gbs(load.bytes_read, load.seconds),
      load.stream_seconds, gbs(load.bytes_read, load.stream_seconds),
      human_bytes(load.resident_bytes), human_bytes(load.peak_host_bytes),
      human_bytes(load.process_peak_host_bytes));
  if (load.peak_device_bytes > 0)
    fmt::print(", peak device {}", human_bytes(load.peak_device_bytes));
  fmt::print("\n");
  for (const TimedStep& step : load.steps)
    fmt::print("  step {:<18} at {:6.3f} s, {:6.3f} s\n", step.name, step.start, step.seconds);
}

void run_bench(const Options& o) {
  if (o.stream_only) {
#ifdef FP8LLM_HAVE_CUDA
    run_stream_only(o);
    return;
#else
    fail("--stream-only needs a build with the CUDA backend");
#endif
  }
  FP8LLM_CHECK(
      o.serving.concurrency > 0 || o.prompt_tokens + o.decode_tokens <= o.engine.max_context,
      "--prompt-tokens + --decode-tokens ({}) exceed --max-context ({})",
      o.prompt_tokens + o.decode_tokens, o.engine.max_context);
  // The first load in a process also starts the CUDA driver; later ones (a server reloading, an
  // RL loop swapping weights) do not. Each load is printed; the last engine is the one measured.
  // --concurrency C asks for C requests in flight: the engine runs that many at once unless
  // --max-seqs says otherwise (then the rest wait, and the floor is that of the smaller batch).
  EngineFlags flags = o.engine;
  if (o.serving.concurrency > flags.max_seqs && !flags.max_seqs_given)
    flags.max_seqs = std::min<int64_t>(o.serving.concurrency, 4096);
  std::unique_ptr<Engine> engine;
  for (int i = 1; i <= o.loads; ++i) {
    engine.reset();
    engine = load_engine(flags);
    print_load(engine->load_report(), i);
  }
  if (o.serving.concurrency > 0) {
    ServingBench b = o.serving;
    b.bandwidth_gbs = o.bandwidth_gbs;
    b.seed = o.seed;
    b.max_seqs = flags.max_seqs;
    return run_serving_bench(*engine, b);
  }
  const LoadReport& load = engine->load_report();
  const ModelConfig& config = engine->config();

  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(engine->vocab_size() - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  for (int32_t& id : prompt) id = pick(rng);

  // Warm-up (first-call allocations, GEMM plans, kernels loaded at their first launch), untimed:
  // a pass of 32 rows (more than the 16 that the tensor-core GEMV takes, so cuBLASLt's too) and
  // one of a token.
  engine->reset();
  engine->feed(std::span<const int32_t>(prompt.data(), std::min<size_t>(prompt.size(), 32)));
  engine->feed(std::span<const int32_t>(prompt.data(), 1));

  // Generation as a user runs it: the prompt in one pass, then one pass per token. Greedy by
  // default (the most likely token found where the logits are: Backend::top_token); with a
  // temperature, sampled as the flags say (on the device where the backend can).
  GenerationOptions gen;
  gen.max_tokens = o.decode_tokens + 1;  // the first comes from the prompt pass
  gen.sampling = o.sampling;
  gen.sampling.seed = o.seed;
  // One --lora PATH: every token goes through the adapter.
  gen.lora = default_lora(o.engine);
  Sampler{gen.sampling};  // rejects bad flags with their names
  const GenerationResult r = engine->generate(prompt, gen);
  FP8LLM_CHECK(static_cast<int>(r.tokens.size()) == gen.max_tokens,
               "bench: generation stopped after {} of {} tokens ({})", r.tokens.size(),
               gen.max_tokens, to_string(r.finish_reason));
  const double prefill_s = r.prompt_seconds;
  const double decode_s = r.generate_seconds;

  // Per decoded token every resident weight byte is read once, except the embedding table, of
  // which one row is read (unless it is also the output projection).
  const uint64_t embed_bytes = config.tie_word_embeddings
                                   ? 0
                                   : static_cast<uint64_t>(config.vocab_size) *
                                         static_cast<uint64_t>(config.hidden_size) * 2;
  const uint64_t weight_bytes = load.resident_bytes - std::min(load.resident_bytes, embed_bytes);
  // And its sequence's keys and values, every layer's: the decode steps feed positions
  // prompt_tokens .. prompt_tokens + decode_tokens - 1, each attending to its position + 1 keys.
  const double kv_per_position = load.kv_blocks > 0 && load.kv_block_size > 0
                                     ? static_cast<double>(load.kv_bytes) /
                                           static_cast<double>(load.kv_blocks * load.kv_block_size)
                                     : 0.0;
  const double mean_keys = static_cast<double>(o.prompt_tokens) + (o.decode_tokens + 1) / 2.0;
  const auto kv_bytes = static_cast<uint64_t>(kv_per_position * mean_keys);
  const uint64_t per_token = weight_bytes + kv_bytes;
  const double bandwidth_gbs =
      o.bandwidth_gbs > 0 ? o.bandwidth_gbs : (o.engine.device == "cuda" ? kH100GBs : 0.0);
  const double floor_ms =
      bandwidth_gbs > 0 ? static_cast<double>(per_token) / (bandwidth_gbs * 1e9) * 1e3 : 0.0;
  const double decode_ms = o.decode_tokens > 0 ? decode_s * 1e3 / o.decode_tokens : 0.0;

  fmt::print("model      {} ({} layers, hidden {}, vocab {}), device {}, quantization {}\n",
             o.engine.model_dir, config.num_layers, config.hidden_size, config.vocab_size,
             o.engine.device, to_string(load.quantization));
  const SamplingParams& sp = gen.sampling;
  fmt::print(
      "decoding   {}\n",
      sp.temperature == 0.0f
          ? std::string("greedy")
          : fmt::format("sampled: temperature {}, top-k {}, top-p {}, min-p {}, "
                        "repetition penalty {}",
                        sp.temperature, sp.top_k, sp.top_p, sp.min_p, sp.repetition_penalty));
  fmt::print("{:<10} {:>8} {:>10} {:>12} {:>10}\n", "phase", "tokens", "seconds", "tokens/s",
             "ms/token");
  fmt::print("{:<10} {:>8} {:>10.3f} {:>12.1f} {:>10.3f}\n", "prefill", o.prompt_tokens, prefill_s,
             prefill_s > 0 ? o.prompt_tokens / prefill_s : 0.0,
             o.prompt_tokens > 0 ? prefill_s * 1e3 / o.prompt_tokens : 0.0);
  fmt::print("{:<10} {:>8} {:>10.3f} {:>12.1f} {:>10.3f}\n", "decode", o.decode_tokens, decode_s,
             decode_s > 0 ? o.decode_tokens / decode_s : 0.0, decode_ms);
  const std::string read = fmt::format(
      "{} read per token ({} of weights, {} of keys and values "
      "at {:.0f} keys on average)",
      human_bytes(per_token), human_bytes(weight_bytes), human_bytes(kv_bytes), mean_keys);
  if (bandwidth_gbs == 0) {
    fmt::print(
        "decode floor: {}; no floor for the CPU without --bandwidth-gbs (this machine's memory "
        "bandwidth)\n",
        read);
    return;
  }
  fmt::print(
      "decode floor: {} / {:.0f} GB/s = {:.3f} ms/token ({:.0f} tokens/s); measured is {:.1f}x "
      "the floor\n",
      read, bandwidth_gbs, floor_ms, floor_ms > 0 ? 1e3 / floor_ms : 0.0,
      floor_ms > 0 ? decode_ms / floor_ms : 0.0);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Time loading, prefill and greedy decoding on random token ids, with their floors");
  add_engine_flags(*cmd, o->engine);
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "Tokens in the timed prefill")
      ->capture_default_str()
      ->check(positive_number());
  cmd->add_option("--loads", o->loads,
                  "Times to load the model, one after another (the first also starts the CUDA "
                  "driver; the last engine is benchmarked)")
      ->capture_default_str()
      ->check(positive_number());
  cmd->add_option("--temperature", o->sampling.temperature,
                  "Sample decoded tokens at this temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "With --temperature: top-k (0: off)")
      ->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "With --temperature: top-p (1: off)")
      ->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "With --temperature: min-p (0: off)")
      ->capture_default_str();
  cmd->add_option("--repetition-penalty", o->sampling.repetition_penalty,
                  "With --temperature: repetition penalty (1: off; any other value samples on "
                  "the host, which needs the history)")
      ->capture_default_str();
  cmd->add_option("--decode-tokens", o->decode_tokens, "Decoding steps timed")
      ->capture_default_str()
      ->check(non_negative_number());
  cmd->add_option("--bandwidth-gbs", o->bandwidth_gbs,
                  "Memory bandwidth for the decode floor (GB/s; default with --device cuda: "
                  "3000, an H100 SXM's HBM3; with --device cpu: no floor unless given)")
      ->check(positive_number());
  cmd->add_option("--seed", o->seed, "Seed of the random prompt")->capture_default_str();
  cmd->add_option("--concurrency", o->serving.concurrency,
                  "Serving throughput instead: at most this many requests in flight (continuous "
                  "batching), with --num-prompts, --input-len, --output-len, --prefix-len")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", o->serving.warmup,
                  "--concurrency: requests of --input-len tokens run first, not counted (first-use "
                  "set-up: kernels loaded, GEMM algorithms chosen, decode steps recorded)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--num-prompts", o->serving.num_prompts, "--concurrency: requests")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--input-len", o->serving.input_len, "--concurrency: prompt tokens")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--output-len", o->serving.output_len, "--concurrency: tokens generated")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--prefix-len", o->serving.prefix_len,
                  "--concurrency: leading prompt tokens every request shares")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--tensor-tflops", o->serving.tensor_tflops,
                  "--concurrency: FP8 tensor peak for the step floor (H200: 1979)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--stream-only", o->stream_only,
                "CUDA: time only streaming the checkpoint to the device (no quantization, no "
                "forward pass)");
  cmd->add_option("--repeat", o->repeat, "--stream-only: runs")
      ->capture_default_str()
      ->check(positive_number());
  // The streamer's own defaults apply where these are not given (the run prints them).
  cmd->add_option("--ring-buffers", o->staging_buffers, "--stream-only: device staging buffers")
      ->check(positive_number());
  cmd->add_option("--readers", o->readers, "--stream-only: reader threads")
      ->check(positive_number());
  cmd->add_option("--buffer-mib", o->buffer_mib, "--stream-only: chunk size (MiB)")
      ->check(positive_number());
  cmd->add_option("--piece-mib", o->piece_mib, "--stream-only: bytes one read covers (MiB)")
      ->check(positive_number());
  cmd->add_flag("--pread", o->pread,
                "--stream-only: read every chunk into the page-locked slots, even where the page "
                "cache can be registered for direct copies");
  cmd->add_option("--pread-share", o->pread_share,
                  "--stream-only: where the page cache is registered, the share of chunks read "
                  "into page-locked slots instead (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--read-slots", o->read_slots,
                  "--stream-only: page-locked slots those chunks are read into")
      ->check(positive_number());
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace fp8llm::cli
