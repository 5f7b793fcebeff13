#include "cli/load_options.h"

#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "cli/format.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/log.h"
#include "loader/quantization_request.h"

namespace fp8llm::cli {
namespace {

struct ConfigText {
  std::string text;
  std::string source;  // starts the parser's errors: the file, or the flag
};

// `--quantization-config` takes the JSON itself, or @path of a file holding it.
ConfigText read_quantization_config_flag(const std::string& arg) {
  if (!arg.starts_with('@')) return {arg, "quantization-config"};
  const std::filesystem::path path = arg.substr(1);
  FP8LLM_CHECK(!path.empty(), "--quantization-config @: expected a file name after the @");
  try {
    return {read_text_file(path), path.string()};
  } catch (const Error& e) {
    fail("--quantization-config {}: {}", arg, e.what());
  }
}

// --lora values as (name, directory).
std::vector<std::pair<std::string, std::filesystem::path>> lora_flags(const EngineFlags& flags) {
  std::vector<std::pair<std::string, std::filesystem::path>> out;
  for (const std::string& v : flags.loras) {
    const size_t eq = v.find('=');
    if (eq == std::string::npos) {
      FP8LLM_CHECK(flags.loras.size() == 1,
                   "--lora {}: with several adapters each needs a name (--lora NAME=DIR)", v);
      out.emplace_back("default", v);
    } else {
      FP8LLM_CHECK(eq > 0 && eq + 1 < v.size(), "--lora {}: expected DIR or NAME=DIR", v);
      out.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    }
  }
  return out;
}

// The r of an adapter directory's adapter_config.json, to size the slots before the load.
int64_t adapter_rank(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "adapter_config.json";
  const nlohmann::json j = nlohmann::json::parse(read_text_file(file), nullptr, false);
  FP8LLM_CHECK(
      j.is_object() && j.contains("r") && j["r"].is_number_integer() && j["r"].get<int64_t>() > 0,
      "--lora {}: {}: r: expected a positive integer", dir.string(), file.string());
  return j["r"].get<int64_t>();
}

// `text` as a number, when all of it is one.
std::optional<double> number(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

// A progress line on a terminal that has not ended yet: a failing load ends it before the error.
bool g_progress_line_open = false;

}  // namespace

std::string default_lora(const EngineFlags& flags) {
  return flags.loras.size() == 1 && flags.loras[0].find('=') == std::string::npos ? "default" : "";
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::optional<double> v = number(text);
        return v && *v > 0 ? "" : fmt::format("must be positive (got {})", text);
      },
      "POSITIVE", "POSITIVE");
}

CLI::Validator non_negative_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::optional<double> v = number(text);
        return v && *v >= 0 ? "" : fmt::format("must be zero or more (got {})", text);
      },
      "NONNEGATIVE", "NONNEGATIVE");
}

GenerationOptions SamplingFlags::generation_options() const {
  GenerationOptions g;
  g.max_tokens = max_tokens;
  g.sampling.temperature = temperature;
  g.sampling.top_k = top_k;
  g.sampling.top_p = top_p;
  g.sampling.min_p = min_p;
  g.sampling.repetition_penalty = repetition_penalty;
  g.sampling.seed = seed;
  g.stop_token_ids = stop_ids;
  return g;
}

void add_engine_flags(CLI::App& cmd, EngineFlags& f) {
  cmd.add_option("--model,-m", f.model_dir, "Model directory (config.json + *.safetensors)")
      ->required();
  cmd.add_option("--quantization,-q", f.quantization,
                 "fp8-row (scale per weight row / per token), fp8-block (128x128 weight tiles, "
                 "1x128 activation groups), none, or auto (an FP8 checkpoint as it is, else a "
                 "registered FP8 copy, fp8-block first, else fp8-block on the fly). A checkpoint "
                 "that is already FP8 is always loaded as it is. With --quantization-config, the "
                 "config decides and this, if given, must agree")
      ->capture_default_str()
      ->each([&f](const std::string&) { f.quantization_given = true; });
  cmd.add_option("--quantization-config", f.quantization_config,
                 "A quantization config naming the mode, as JSON or @FILE: a torchao "
                 "Float8DynamicActivationFloat8WeightConfig as config_to_dict writes it (PerRow "
                 "-> fp8-row, [PerBlock([1,128]), PerBlock([128,128])] -> fp8-block), bare or as "
                 "vLLM hf_overrides ({\"quantization_config\": {\"quant_method\": \"torchao\", "
                 "\"quant_type\": {\"default\": ...}}}); or an fp8 (weight_block_size [128, "
                 "128]) or compressed-tensors FP8 quantization_config. Anything else is an error "
                 "naming the unsupported part");
  cmd.add_option("--registry", f.registry,
                 "Registry of pre-quantized copies (default: $FP8LLM_REGISTRY, else "
                 "$XDG_CONFIG_HOME/fp8llm/registry.json)");
  cmd.add_flag("--offline", f.offline,
               "Quantize once into the cache directory and load from there, instead of "
               "quantizing on the fly");
  cmd.add_option("--device", f.device,
                 "cpu (the exact reference backend) or cuda (FP8 tensor cores; needs a GPU with "
                 "compute capability 8.9 or newer and a build with the CUDA toolkit)")
      ->capture_default_str();
  cmd.add_option("--fp8-gemm", f.fp8_gemm,
                 "CUDA: tensor-core (FP8 tensor cores, fast; a GEMV for passes of up to 16 tokens, "
                 "cuBLASLt above, with about 1e-4 relative error) or fp32 (every FP8 product "
                 "summed in fp32 on CUDA cores, like the CPU backend, the same at any batch size; "
                 "slow prefill)")
      ->capture_default_str()
      ->check(CLI::IsMember({"tensor-core", "fp32"}));
  cmd.add_option("--max-context", f.max_context, "Positions the KV cache holds")
      ->capture_default_str()
      ->check(positive_number());
  cmd.add_option("--kv-cache-dtype", f.kv_cache_dtype,
                 "Element type of the paged KV cache: auto (fp32 on cpu, the exact reference; bf16 "
                 "on cuda), fp32, bf16, or fp8 (e4m3 with a scale per token and KV head: twice "
                 "bf16's capacity)")
      ->capture_default_str();
  cmd.add_option("--kv-memory", f.kv_memory_gib,
                 "GiB for the KV cache (default: cpu, 16 contexts up to 2 GiB; cuda, 90% of what "
                 "the weights leave free, up to what --max-seqs contexts use)")
      ->check(non_negative_number());
  cmd.add_option("--block-size", f.block_size, "Positions per KV block")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd.add_flag("--no-prefix-caching", f.no_prefix_caching,
               "Do not reuse the KV blocks of prompt prefixes seen before");
  cmd.add_option("--max-batch-tokens", f.max_batch_tokens,
                 "Tokens one step runs at most, decode tokens and prompt chunks (default: 2048 on "
                 "cpu, 8192 on cuda)")
      ->check(positive_number());
  cmd.add_option("--max-seqs", f.max_seqs,
                 "Sequences running at once (bench --concurrency C: at least C unless given)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096))
      ->each([&f](const std::string&) { f.max_seqs_given = true; });
  cmd.add_flag("--no-cuda-graphs", f.no_cuda_graphs,
               "cuda: run decode steps op by op instead of replaying recorded CUDA graphs");
  cmd.add_option("--tensor-parallel", f.tensor_parallel,
                 "Ranks that each hold a shard of every layer and run every step together (on "
                 "cpu, threads of this process); the heads, KV heads, MLP width and vocabulary "
                 "must divide")
      ->capture_default_str();
  cmd.add_option("--lora", f.loras,
                 "A PEFT LoRA adapter directory applied to every request, or NAME=DIR (repeatable) "
                 "for requests that name it (the `lora` field of --prompts-file)");
  cmd.add_option("--max-loras", f.max_loras,
                 "Adapter slots (default: as many as --lora gives); more leave room for adapters "
                 "added later")
      ->check(CLI::Range(0, 64));
  cmd.add_option("--max-lora-rank", f.max_lora_rank,
                 "Largest adapter rank the slots hold (default: the largest r of the --lora "
                 "adapters, at least 16)")
      ->check(CLI::Range(1, 512));
  cmd.add_flag("--quiet", f.quiet, "No progress or summary lines on stderr");
}

void add_sampling_flags(CLI::App& cmd, SamplingFlags& f) {
  cmd.add_option("--max-tokens,-n", f.max_tokens, "Tokens to generate")
      ->capture_default_str()
      ->check(non_negative_number());
  cmd.add_option("--temperature,-t", f.temperature, "0 = greedy")->capture_default_str();
  cmd.add_option("--top-k", f.top_k, "Sample among the k most likely tokens (0 = off)")
      ->capture_default_str();
  cmd.add_option("--top-p", f.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd.add_option("--min-p", f.min_p, "Drop tokens below min_p x the top probability (0 = off)")
      ->capture_default_str();
  cmd.add_option("--repetition-penalty", f.repetition_penalty, "1 = off")->capture_default_str();
  cmd.add_option("--seed", f.seed, "Random seed for sampling")->capture_default_str();
  cmd.add_option("--stop-ids", f.stop_ids, "Token ids that end generation")->delimiter(',');
}

LoadOptions engine_load_options(const EngineFlags& flags) {
  LoadOptions o;
  o.model_dir = flags.model_dir;
  o.quantization = parse_quantization(flags.quantization);
  if (!flags.quantization_config.empty()) {
    // Checked here, before anything is read, and the mode settled: the config decides unless
    // --quantization was given, which must then agree. Engine::load checks the same again, but
    // only here can an error name the @file, and bench --stream-only needs the settled mode.
    const ConfigText config = read_quantization_config_flag(flags.quantization_config);
    const QuantizationRequest request = parse_quantization_request(config.text, config.source);
    o.quantization = quantization_with_request(
        flags.quantization_given ? o.quantization : Quantization::Auto, request);
    o.quantization_config = config.text;
  }
  o.device = parse_device(flags.device);
  o.max_context = flags.max_context;
  o.kv_cache_dtype = parse_kv_cache_dtype(flags.kv_cache_dtype);
  o.kv_memory_gib = flags.kv_memory_gib;
  o.block_size = flags.block_size;
  o.prefix_caching = !flags.no_prefix_caching;
  o.max_batch_tokens = flags.max_batch_tokens;
  o.max_seqs = flags.max_seqs;
  o.cuda_graphs = !flags.no_cuda_graphs;
  o.tensor_parallel = flags.tensor_parallel;
  o.max_loras = flags.max_loras > 0 ? flags.max_loras : static_cast<int>(flags.loras.size());
  o.max_lora_rank = flags.max_lora_rank > 0 ? flags.max_lora_rank : 16;
  if (flags.max_lora_rank == 0) {
    for (const auto& [name, dir] : lora_flags(flags))
      o.max_lora_rank = std::max(o.max_lora_rank, adapter_rank(dir));
  }
  o.registry = flags.registry;
  o.offline = flags.offline;
  o.fp8_gemm = parse_fp8_gemm(flags.fp8_gemm);
  return o;
}

std::unique_ptr<Engine> load_engine(const EngineFlags& flags) {
  LoadOptions o = engine_load_options(flags);
  const bool tty = ::isatty(fileno(stderr));
  if (flags.quiet) set_log_level(LogLevel::Warning);  // keeps warnings, drops the load-path line
  if (!flags.quiet) {
    o.progress = [tty, last = -1](uint64_t done, uint64_t total) mutable {
      const int pct = total ? static_cast<int>(100 * done / total) : 100;
      if (pct == last) return;
      last = pct;
      if (tty) {
        // \033[K clears what a longer line before left (the byte count shrinks from "999.9 KiB"
        // to "1.0 MiB").
        const int width = 30, filled = pct * width / 100;
        fmt::print(stderr, "\r\033[Kloading [{}{}] {:3d}% {}", std::string(filled, '#'),
                   std::string(width - filled, ' '), pct, human_bytes(done));
        g_progress_line_open = done != total;
        if (done == total) fmt::print(stderr, "\n");
      } else if (done == total) {
        fmt::print(stderr, "loading: read {}\n", human_bytes(done));
      }
    };
  }
  std::unique_ptr<Engine> engine;
  try {
    engine = Engine::load(o);
  } catch (...) {
    // The error goes on a line of its own, not after the bar.
    if (g_progress_line_open) fmt::print(stderr, "\r\033[K");
    g_progress_line_open = false;
    throw;
  }
  for (const auto& [name, dir] : lora_flags(flags)) engine->add_lora(name, dir);
  if (!flags.quiet) {
    const LoadReport& r = engine->load_report();
    log_status(
        "loaded {} ({}) in {:.2f} s: read {} ({:.2f} GB/s; streaming {:.2f} GB/s), {} resident, "
        "{} tensors quantized",
        flags.model_dir, to_string(r.quantization), r.seconds, human_bytes(r.bytes_read),
        r.seconds > 0 ? static_cast<double>(r.bytes_read) / r.seconds / 1e9 : 0.0,
        r.stream_seconds > 0 ? static_cast<double>(r.bytes_read) / r.stream_seconds / 1e9 : 0.0,
        human_bytes(r.resident_bytes), r.quantized_tensors);
    // The loader's memory promise: what the load adds is the loaded weights, one source tensor
    // in flight and a fixed allowance; what the process held before it (libraries, runtimes) is
    // not the load's, and is shown apart in the process's total.
    const uint64_t bound = r.resident_bytes + r.largest_tensor_bytes + (64ull << 20);
    log_status(
        "peak host memory during load {} (bound: resident + largest tensor + 64 MiB = {}); "
        "process peak {}",
        human_bytes(r.peak_host_bytes), human_bytes(bound), human_bytes(r.process_peak_host_bytes));
    log_status("kv cache: {} blocks of {} positions in {} ({}), {} positions in all",
               r.kv_blocks - 1, r.kv_block_size, to_string(r.kv_cache_dtype),
               human_bytes(r.kv_bytes), (r.kv_blocks - 1) * r.kv_block_size);
  }
  return engine;
}

void print_generation_summary(size_t prompt_tokens, const GenerationResult& r) {
  log_status(
      "prompt: {} tokens in {:.3f} s ({:.1f} tok/s); generated: {} tokens in {:.3f} s "
      "({:.1f} tok/s); finish: {}",
      prompt_tokens, r.prompt_seconds,
      r.prompt_seconds > 0 ? static_cast<double>(prompt_tokens) / r.prompt_seconds : 0.0,
      r.tokens.size(), r.generate_seconds,
      r.generate_seconds > 0 ? static_cast<double>(r.tokens.size()) / r.generate_seconds : 0.0,
      to_string(r.finish_reason));
}

}  // namespace fp8llm::cli
