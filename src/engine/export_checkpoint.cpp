#include "engine/export_checkpoint.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "formats/hf_config.h"
#include "loader/file_sink.h"
#include "loader/quantization_config.h"
#include "model/weights.h"

namespace fp8llm {
namespace fs = std::filesystem;

nlohmann::json export_quantization_config(const Engine& engine,
                                          const std::vector<StateDictEntry>& entries,
                                          StateDictForm form) {
  std::map<std::string, std::string> dtype_of;
  for (const StateDictEntry& e : entries) dtype_of[e.name] = e.dtype;
  const bool any_fp8 = std::any_of(entries.begin(), entries.end(),
                                   [](const StateDictEntry& e) { return e.dtype == "F8_E4M3"; });
  if (form == StateDictForm::Dequantized || !any_fp8) return nullptr;
  const Quantization mode = engine.load_report().quantization;
  FP8LLM_CHECK(mode == Quantization::Fp8Row || mode == Quantization::Fp8Block,
               "export: FP8 weights in a model loaded as '{}'", to_string(mode));
  const std::optional<Fp8Scheme> scheme = scheme_of(mode);
  // Projections held in their own dtype (a pre-quantized checkpoint's ignored modules) are named,
  // by module, so that readers of the written checkpoint do not look for their scales.
  std::vector<std::string> unquantized;
  for (const WeightSpec& s : expected_weights(engine.config())) {
    if (!s.quantizable || dtype_of[s.name] == "F8_E4M3") continue;
    unquantized.push_back(s.name.substr(0, s.name.size() - std::string(".weight").size()));
  }
  nlohmann::json qc = quantization_config_for(*scheme);
  if (!unquantized.empty()) {
    if (*scheme == Fp8Scheme::Block) {
      qc["modules_to_not_convert"] = unquantized;
    } else {
      for (const std::string& m : unquantized) qc["ignore"].push_back(m);
    }
  }
  return qc;
}

ExportSummary export_checkpoint(const Engine& engine, const fs::path& source_dir,
                                const fs::path& out_dir, const ExportOptions& options) {
  check_output_directory(out_dir);
  const std::vector<StateDictEntry> entries = engine.state_dict(options.form);
  std::vector<OutputTensor> outputs;
  for (const StateDictEntry& e : entries) {
    const std::optional<DType> dtype = dtype_from_name(e.dtype);
    FP8LLM_CHECK(dtype.has_value(), "{}: dtype {} cannot be written", e.name, e.dtype);
    outputs.push_back({e.name, *dtype, e.shape, e.nbytes});
  }
  const nlohmann::json qc = export_quantization_config(engine, entries, options.form);

  ExportSummary summary;
  summary.tensors = outputs.size();
  summary.quantization = qc.is_null() ? Quantization::None : engine.load_report().quantization;
  write_model_directory(source_dir, out_dir, qc, [&](const fs::path& tmp) {
    CheckpointWriter writer(tmp, outputs, options.max_shard_bytes);
    engine.visit_state_dict(options.form,
                            [&](const StateDictTensor& t) { writer.write(t.entry.name, t.bytes); });
    writer.finish();
    summary.files = writer.files();
    summary.bytes_written = writer.total_bytes();
  });
  return summary;
}

}  // namespace fp8llm
