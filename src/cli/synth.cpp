// `fp8llm synth --preset llama3-8b --out DIR`: writes a Llama-architecture BF16 checkpoint with
// random weights (config.json + sharded safetensors + index), for load and speed benchmarks on
// real model shapes without downloading a model. With `--lora-rank R` it writes instead a PEFT
// LoRA adapter of that shape (rank R on all seven projections), for the LoRA benchmarks.
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/format.h"
#include "cli/load_options.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/thread_pool.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "loader/quantize_checkpoint.h"
#include "lora/peft_adapter.h"
#include "model/layer_members.h"
#include "model/lora_weights.h"
#include "model/weights.h"

namespace fp8llm::cli {
namespace {

struct Options {
  std::string preset = "llama3-8b";
  std::string out;
  int64_t layers = 0;
  bool layers_given = false;  // else the preset's
  int64_t max_positions = 0;
  bool max_positions_given = false;  // else the preset's max_position_embeddings
  uint64_t shard_bytes = 4ull << 30;
  uint64_t seed = 1;
  int64_t lora_rank = 0;  // > 0: write an adapter
};

// The deepest Llama-family checkpoints have 126 layers (Llama 3.1 405B); far more is a typo, and
// the list of tensors and the files written grow with it.
constexpr int64_t kMaxLayers = 1024;
// Positions a synthetic model may take: 2^20, eight times Llama 3.1's context.
constexpr int64_t kMaxPositions = int64_t{1} << 20;

nlohmann::json preset_config(const std::string& preset) {
  nlohmann::json c = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"hidden_act", "silu"},
                      {"torch_dtype", "bfloat16"},
                      {"rms_norm_eps", 1e-5},
                      {"tie_word_embeddings", false},
                      {"attention_bias", false},
                      {"mlp_bias", false},
                      {"bos_token_id", 1},
                      {"eos_token_id", 2}};
  if (preset == "llama3-8b") {
    c.update({{"hidden_size", 4096},
              {"intermediate_size", 14336},
              {"num_hidden_layers", 32},
              {"num_attention_heads", 32},
              {"num_key_value_heads", 8},
              {"vocab_size", 128256},
              {"max_position_embeddings", 8192},
              {"rope_theta", 500000.0}});
  } else if (preset == "llama3-1b") {
    c.update({{"hidden_size", 2048},
              {"intermediate_size", 8192},
              {"num_hidden_layers", 16},
              {"num_attention_heads", 32},
              {"num_key_value_heads", 8},
              {"vocab_size", 128256},
              {"max_position_embeddings", 8192},
              {"rope_theta", 500000.0}});
  } else if (preset == "small") {
    c.update({{"hidden_size", 1024},
              {"intermediate_size", 4096},
              {"num_hidden_layers", 8},
              {"num_attention_heads", 16},
              {"num_key_value_heads", 4},
              {"vocab_size", 32000},
              {"max_position_embeddings", 4096},
              {"rope_theta", 10000.0}});
  } else {
    fail("--preset '{}' is not known (known: llama3-8b, llama3-1b, small)", preset);
  }
  return c;
}

// Fills `out` with bf16 values: N(0, std) approximated by a sum of uniforms (fast, deterministic
// per tensor and chunk), or 1 + N(0, std) for norms.
void fill_random(std::vector<uint16_t>& out, float mean, float std, uint64_t seed) {
  parallel_for(out.size(), 1 << 16, [&](size_t begin, size_t end) {
    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + begin);
    for (size_t i = begin; i < end; ++i) {
      const uint64_t r = rng();
      // Sum of four 16-bit uniforms: mean 2, variance 4/12; rescale to N(0,1)-ish.
      const float u = static_cast<float>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) +
                                         ((r >> 32) & 0xFFFF) + (r >> 48)) /
                      65536.0f;
      out[i] = f32_to_bf16(mean + std * (u - 2.0f) * 1.7320508f);
    }
  });
}

// Free bytes of the file system holding `dir`, or nullopt when it cannot be asked.
std::optional<uint64_t> free_bytes(const std::filesystem::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// A PEFT adapter on every projection of every layer: A and B random (B is zero when PEFT starts
// training, but then the adapter adds nothing and a benchmark would not see its arithmetic).
void write_adapter(const Options& o, const ModelConfig& mc, const std::filesystem::path& dir) {
  FP8LLM_CHECK(o.lora_rank >= 1 && o.lora_rank <= 512, "--lora-rank {}: must be in [1, 512]",
               o.lora_rank);
  check_output_directory(dir);
  build_directory_atomically(dir, [&](const std::filesystem::path& tmp) {
    SafetensorsWriter w(tmp / "adapter_model.safetensors");
    struct Item {
      std::string name;
      Shape shape;
    };
    std::vector<Item> items;
    for (int64_t l = 0; l < mc.num_layers; ++l) {
      for (const LinearKind kind : kLayerLinearKinds) {
        const ProjectionShape p = projection_shape(mc, kind);
        items.push_back({peft_factor_name(l, kind, 'A'), {o.lora_rank, p.in}});
        items.push_back({peft_factor_name(l, kind, 'B'), {p.out, o.lora_rank}});
      }
    }
    for (const Item& it : items) w.declare(it.name, DType::BF16, it.shape);
    std::vector<uint16_t> buffer;
    uint64_t index = 0;
    for (const Item& it : items) {
      buffer.resize(static_cast<size_t>(num_elements(it.shape)));
      fill_random(buffer, 0.0f, 0.02f, o.seed + index++);
      w.write({reinterpret_cast<const std::byte*>(buffer.data()), buffer.size() * 2});
    }
    w.finish();
    nlohmann::json targets = nlohmann::json::array();
    for (const LinearKind kind : kLayerLinearKinds) targets.push_back(peft_module_name(kind));
    const nlohmann::json config = {{"peft_type", "LORA"},
                                   {"r", o.lora_rank},
                                   {"lora_alpha", 2 * o.lora_rank},
                                   {"target_modules", targets},
                                   {"bias", "none"}};
    write_text_file_atomically(tmp / "adapter_config.json", config.dump(2));
  });
  log_status("wrote a rank-{} LoRA adapter for {} to {}", o.lora_rank, o.preset, dir.string());
}

void run_synth(const Options& o) {
  FP8LLM_CHECK(!o.out.empty(), "--out is required");
  nlohmann::json config = preset_config(o.preset);
  if (o.layers_given) {
    FP8LLM_CHECK(o.layers >= 1 && o.layers <= kMaxLayers,
                 "--layers {}: must be between 1 and {} (the deepest Llama-family models have 126)",
                 o.layers, kMaxLayers);
    config["num_hidden_layers"] = o.layers;
  }
  if (o.max_positions_given) {
    // Llama 3.1 takes 131,072 positions; a long-context benchmark needs the model to take them.
    FP8LLM_CHECK(o.max_positions >= 1 && o.max_positions <= kMaxPositions,
                 "--max-positions {}: must be between 1 and {}", o.max_positions, kMaxPositions);
    config["max_position_embeddings"] = o.max_positions;
  }
  const ModelConfig mc = parse_model_config(config, o.preset);
  if (o.lora_rank != 0) return write_adapter(o, mc, o.out);
  const std::vector<WeightSpec> specs = expected_weights(mc);

  const std::filesystem::path dir = o.out;
  check_output_directory(dir);
  // Split into shards of at most shard_bytes.
  std::vector<std::vector<const WeightSpec*>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const auto& s : specs) {
    const uint64_t bytes = static_cast<uint64_t>(num_elements(s.shape)) * 2;
    if (in_shard > 0 && in_shard + bytes > o.shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&s);
    in_shard += bytes;
    total += bytes;
  }
  const std::filesystem::path parent = dir.has_parent_path() ? dir.parent_path() : ".";
  if (const std::optional<uint64_t> room = free_bytes(parent)) {
    FP8LLM_CHECK(total <= *room, "{}: the checkpoint takes {}, but {} has {} free", dir.string(),
                 human_bytes(total), parent.string(), human_bytes(*room));
  }
  build_directory_atomically(dir, [&](const std::filesystem::path& tmp) {
    nlohmann::json weight_map = nlohmann::json::object();
    const bool tty = ::isatty(fileno(stderr));
    std::vector<uint16_t> buffer;
    uint64_t written = 0, tensor_index = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string name =
          fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
      SafetensorsWriter w(tmp / name);
      for (const WeightSpec* s : shards[i]) w.declare(s->name, DType::BF16, s->shape);
      for (const WeightSpec* s : shards[i]) {
        buffer.resize(static_cast<size_t>(num_elements(s->shape)));
        const bool norm = s->shape.size() == 1;
        fill_random(buffer, norm ? 1.0f : 0.0f, norm ? 0.1f : 0.02f, o.seed + tensor_index++);
        w.write({reinterpret_cast<const std::byte*>(buffer.data()), buffer.size() * 2});
        weight_map[s->name] = name;
        written += buffer.size() * 2;
        if (tty) {
          fmt::print(stderr, "\r\033[Ksynth: {} / {}", human_bytes(written), human_bytes(total));
        }
      }
      w.finish();
    }
    if (tty) fmt::print(stderr, "\n");
    const nlohmann::json index = {{"metadata", {{"total_size", total}}},
                                  {"weight_map", weight_map}};
    write_text_file_atomically(tmp / "model.safetensors.index.json", index.dump(2));
    write_text_file_atomically(tmp / "config.json", config.dump(2));
  });
  log_status("wrote {} ({} parameters, {} in {} shard(s)) to {}", o.preset, total / 2,
             human_bytes(total), shards.size(), dir.string());
}

}  // namespace

void add_synth_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "synth", "Write a random-weight BF16 Llama checkpoint of a real model's shape (benchmarks)");
  cmd->add_option("--preset", opts->preset, "llama3-8b | llama3-1b | small")->capture_default_str();
  cmd->add_option("--out,-o", opts->out, "Output model directory (must not exist)")->required();
  cmd->add_option("--layers", opts->layers,
                  fmt::format("Override the number of layers (1 to {})", kMaxLayers))
      ->each([opts](const std::string&) { opts->layers_given = true; });
  cmd->add_option("--max-positions", opts->max_positions,
                  "Override the positions the model takes (max_position_embeddings; the presets "
                  "take 8192 or 4096)")
      ->each([opts](const std::string&) { opts->max_positions_given = true; });
  cmd->add_option("--shard-bytes", opts->shard_bytes, "Largest shard size in bytes")
      ->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
  cmd->add_option("--lora-rank", opts->lora_rank,
                  "Write a PEFT LoRA adapter of this rank on all seven projections of the preset's "
                  "shape instead of a checkpoint");
  cmd->callback([opts] { run_synth(*opts); });
}

}  // namespace fp8llm::cli
