#include "loader/quantize_checkpoint.h"

#include <stdlib.h>

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

void build_directory_atomically(const fs::path& out_dir,
                                const std::function<void(const fs::path&)>& fill) {
  FP8LLM_CHECK(!fs::exists(out_dir), "{}: already exists (choose a new output directory)",
               out_dir.string());
  const fs::path parent = out_dir.has_parent_path() ? out_dir.parent_path() : fs::path(".");
  FP8LLM_CHECK(fs::is_directory(parent), "{}: the parent directory does not exist",
               out_dir.string());
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
  nlohmann::json config_json = nlohmann::json::parse(read_text_file(model_dir / "config.json"));
  config_json["quantization_config"] = quantization_config_for(scheme);

  QuantizeSummary summary;
  build_directory_atomically(out_dir, [&](const fs::path& tmp) {
    FileSink sink(plan, tmp, max_shard_bytes);
    const StreamStats stats = stream_weights(plan, sink, progress);
    sink.finish();
    for (const fs::path& f : companion_files(model_dir)) fs::copy_file(f, tmp / f.filename());
    write_text_file_atomically(tmp / "config.json", config_json.dump(2) + "\n");
    summary.bytes_read = stats.bytes_read;
    summary.files = sink.files();
    for (const auto& o : output_tensors(plan)) summary.bytes_written += o.nbytes;
  });
  for (const auto& t : plan.tensors) summary.quantized_tensors += t.quantize.has_value();
  return summary;
}

}  // namespace fp8llm
