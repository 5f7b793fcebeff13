#include "loader/quantize_checkpoint.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "loader/file_sink.h"
#include "loader/load_plan.h"
#include "loader/quantization_config.h"

namespace fp8llm {
namespace fs = std::filesystem;

std::vector<fs::path> companion_files(const fs::path& model_dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(model_dir)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    const bool keep = name.starts_with("tokenizer") || name.starts_with("chat_template") ||
                      name == "generation_config.json" || name == "special_tokens_map.json" ||
                      name == "added_tokens.json" || name == "vocab.json" || name == "merges.txt";
    if (keep) out.push_back(e.path());
  }
  return out;
}

void check_output_directory(const fs::path& out_dir) {
  FP8LLM_CHECK(!fs::exists(out_dir), "{}: already exists (choose a new output directory)",
               out_dir.string());
  const fs::path parent = out_dir.has_parent_path() ? out_dir.parent_path() : fs::path(".");
  FP8LLM_CHECK(fs::exists(parent), "{}: the parent directory does not exist", out_dir.string());
  FP8LLM_CHECK(fs::is_directory(parent), "{}: the parent {} is not a directory", out_dir.string(),
               parent.string());
  FP8LLM_CHECK(::access(parent.c_str(), W_OK) == 0, "{}: the parent directory is not writable ({})",
               out_dir.string(), std::strerror(errno));
}

void build_directory_atomically(const fs::path& out_dir,
                                const std::function<void(const fs::path&)>& fill) {
  check_output_directory(out_dir);
  const fs::path parent = out_dir.has_parent_path() ? out_dir.parent_path() : fs::path(".");
  std::string templ = (parent / (out_dir.filename().string() + ".tmp-XXXXXX")).string();
  FP8LLM_CHECK(::mkdtemp(templ.data()) != nullptr, "{}: cannot create a temporary directory: {}",
               templ, std::strerror(errno));
  const fs::path tmp = templ;
  try {
    fill(tmp);
    fs::rename(tmp, out_dir);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
}

void write_model_directory(const fs::path& source_dir, const fs::path& out_dir,
                           const nlohmann::json& quantization_config,
                           const std::function<void(const fs::path&)>& write_weights) {
  // Read before anything is written, so that a bad source fails with nothing to clean up.
  nlohmann::json config_json = nlohmann::json::parse(read_text_file(source_dir / "config.json"));
  if (quantization_config.is_null()) {
    config_json.erase("quantization_config");
  } else {
    config_json["quantization_config"] = quantization_config;
  }
  const std::vector<fs::path> companions = companion_files(source_dir);
  build_directory_atomically(out_dir, [&](const fs::path& tmp) {
    write_weights(tmp);
    for (const fs::path& f : companions) fs::copy_file(f, tmp / f.filename());
    write_text_file_atomically(tmp / "config.json", config_json.dump(2) + "\n");
  });
}

QuantizeSummary quantize_checkpoint(const fs::path& model_dir, Fp8Scheme scheme,
                                    const fs::path& out_dir, uint64_t max_shard_bytes,
                                    const StreamProgress& progress) {
  const ModelConfig config = load_model_config(model_dir);
  const Checkpoint checkpoint = Checkpoint::open(model_dir);
  const LoadPlan plan = build_load_plan(checkpoint, config, scheme);
  FP8LLM_CHECK(!plan.prequant,
               "{}: already an FP8 checkpoint ({}); quantize reads a BF16, F16 or "
               "F32 checkpoint",
               model_dir.string(), plan.prequant->description);

  QuantizeSummary summary;
  write_model_directory(model_dir, out_dir, quantization_config_for(scheme),
                        [&](const fs::path& tmp) {
                          FileSink sink(plan, tmp, max_shard_bytes);
                          const StreamStats stats = stream_weights(plan, sink, progress);
                          sink.finish();
                          summary.bytes_read = stats.bytes_read;
                          summary.files = sink.files();
                        });
  for (const auto& o : output_tensors(plan)) summary.bytes_written += o.nbytes;
  for (const auto& t : plan.tensors) summary.quantized_tensors += t.quantize.has_value();
  return summary;
}

}  // namespace fp8llm
