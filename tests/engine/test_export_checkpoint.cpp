// export_checkpoint writes a loaded engine's weights as a model directory: equal to the reference
// FP8 checkpoints byte for byte, loading back to the very same logits, dequantized on request,
// with the quantization_config of what it holds, sharded with an index when asked, and either
// complete or absent.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <fstream>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "engine/export_checkpoint.h"
#include "formats/hf_config.h"
#include "fp8llm/engine.h"
#include "loader/quantization_config.h"
#include "reference.h"
#include "state_dict_expect.h"

namespace fp8llm::test {
namespace {
namespace fs = std::filesystem;

std::unique_ptr<Engine> load(const fs::path& dir, const std::string& quantization) {
  return Engine::load({.model_dir = dir,
                       .quantization = parse_quantization(quantization),
                       .registry = data_path("no-registry.json")});
}

nlohmann::json config_of(const fs::path& dir) {
  return nlohmann::json::parse(read_text_file(dir / "config.json"));
}

// Only `name` is in `dir`: nothing was left behind next to the export.
void expect_only(const fs::path& dir, const std::set<std::string>& names) {
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_TRUE(names.contains(e.path().filename().string())) << "left behind: " << e.path();
}

// The exported directory loads as stored and gives the original engine's logits exactly.
void expect_same_logits(Engine& original, const fs::path& exported, const std::string& model,
                        const std::string& quantization) {
  // "auto" loads an FP8 checkpoint as stored (and would quantize an unquantized one).
  const auto reloaded = load(exported, quantization == "none" ? "none" : "auto");
  EXPECT_EQ(to_string(reloaded->load_report().quantization), quantization);
  EXPECT_EQ(reloaded->load_report().quantized_tensors, 0u);  // loaded as stored
  const Reference ref = Reference::load(model);
  for (size_t p = 0; p < 3; ++p) {
    EXPECT_EQ(reloaded->logits(ref.prompts[p]), original.logits(ref.prompts[p]))
        << model << " " << quantization << " prompt " << p;
  }
}

using Case = ModelCase;

class Export : public ::testing::TestWithParam<Case> {};

TEST_P(Export, StoredEqualsReferenceAndReloadsToTheSameLogits) {
  const Case& c = GetParam();
  TempDir tmp;
  const auto engine = load(data_path(c.model), c.quantization);
  const ExportSummary s = export_checkpoint(*engine, data_path(c.model), tmp / "out");
  EXPECT_EQ(to_string(s.quantization), c.quantization);
  EXPECT_EQ(s.files, std::vector<std::string>{"model.safetensors"});
  expect_same_tensors(tensors_of_dir(tmp / "out"),
                      tensors_of_file(data_path(expected_file(c.model, c.quantization))));
  const nlohmann::json qc = config_of(tmp / "out")["quantization_config"];
  EXPECT_EQ(qc["quant_method"], c.quantization == "fp8-block" ? "fp8" : "compressed-tensors");
  EXPECT_FALSE(qc.contains("modules_to_not_convert"));
  if (c.quantization == "fp8-row") {
    EXPECT_EQ(qc["ignore"], nlohmann::json{"lm_head"});
  }
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    EXPECT_EQ(read_text_file(tmp / "out" / f), read_text_file(data_path(c.model) / f)) << f;
  EXPECT_FALSE(fs::exists(tmp / "out" / "reference.json"));
  expect_only(tmp.path(), {"out"});
  expect_same_logits(*engine, tmp / "out", c.model, c.quantization);
}

TEST_P(Export, DequantizedEqualsTheReferenceDequantized) {
  const Case& c = GetParam();
  TempDir tmp;
  const auto engine = load(data_path(c.model), c.quantization);
  const ExportSummary s = export_checkpoint(*engine, data_path(c.model), tmp / "out",
                                            {.form = StateDictForm::Dequantized});
  EXPECT_EQ(to_string(s.quantization), "none");
  expect_same_tensors(
      tensors_of_dir(tmp / "out"),
      dequantized(tensors_of_file(data_path(expected_file(c.model, c.quantization)))));
  nlohmann::json want = config_of(data_path(c.model));
  EXPECT_EQ(config_of(tmp / "out"), want);  // the source's config, no quantization_config
  EXPECT_FALSE(load_model_config(tmp / "out").quantization_config.has_value());
}

INSTANTIATE_TEST_SUITE_P(ExportCheckpoint, Export,
                         ::testing::Values(Case{"tiny-llama", "fp8-row"},
                                           Case{"tiny-llama", "fp8-block"},
                                           Case{"tiny-qwen2", "fp8-row"},
                                           Case{"tiny-qwen2", "fp8-block"}),
                         model_case_name);

TEST(ExportCheckpoint, UnquantizedIsTheCheckpoint) {
  for (const std::string model : {"tiny-qwen2", "tiny-qwen3"}) {
    TempDir tmp;
    const auto engine = load(data_path(model), "none");
    export_checkpoint(*engine, data_path(model), tmp / "out");
    expect_same_tensors(tensors_of_dir(tmp / "out"), tensors_of_dir(data_path(model)));
    EXPECT_EQ(config_of(tmp / "out"), config_of(data_path(model)));
    expect_same_logits(*engine, tmp / "out", model, "none");
  }
}

// A pre-quantized checkpoint exports its stored bytes unchanged, under its own quantization_config.
TEST(ExportCheckpoint, PrequantizedExportsItsBytesUnchanged) {
  TempDir tmp;
  const fs::path src = data_path("tiny-llama-fp8-block");
  const auto engine = load(src, "auto");
  export_checkpoint(*engine, src, tmp / "out");
  expect_same_tensors(tensors_of_dir(tmp / "out"), tensors_of_file(src / "model.safetensors"));
  EXPECT_EQ(config_of(tmp / "out"), config_of(src));
  expect_same_logits(*engine, tmp / "out", "tiny-llama", "fp8-block");
}

// A pre-quantized checkpoint that leaves a projection unquantized (made here from the reference
// FP8 checkpoint of each layout): the state dict holds it in its dtype without a scale, and the
// exported config names its module (fine-grained: modules_to_not_convert; compressed-tensors:
// ignore, beside lm_head).
TEST(ExportCheckpoint, UnquantizedProjectionsAreNamedInTheConfig) {
  const std::string q0 = "model.layers.0.self_attn.q_proj";
  for (const Fp8Scheme scheme : {Fp8Scheme::Block, Fp8Scheme::Row}) {
    const std::string mode = fmt::format("fp8-{}", fp8_scheme_name(scheme));
    TempDir tmp;
    const fs::path src = tmp / "mixed";
    copy_dir(data_path("tiny-llama"), src);
    const TensorMap bf16 = tensors_of_file(src / "model.safetensors");
    TensorMap mixed = tensors_of_file(data_path(expected_file("tiny-llama", mode)));
    mixed.erase(weight_scale_name(scheme, q0 + ".weight"));
    mixed[q0 + ".weight"] = bf16.at(q0 + ".weight");
    std::vector<std::pair<std::string, TensorView>> views;
    for (const auto& [name, t] : mixed) views.emplace_back(name, t.view());
    write_safetensors(src / "model.safetensors", views);
    nlohmann::json config = config_of(src);
    config["quantization_config"] = quantization_config_for(scheme);
    const char* list = scheme == Fp8Scheme::Block ? "modules_to_not_convert" : "ignore";
    config["quantization_config"][list].push_back(q0);
    write_text_file_atomically(src / "config.json", config.dump(2));

    const auto engine = load(src, "auto");
    EXPECT_EQ(to_string(engine->load_report().quantization), mode);
    EXPECT_EQ(engine->load_report().quantized_tensors, 0u);
    for (const auto& e : engine->state_dict()) {
      EXPECT_FALSE(e.name.starts_with(q0 + ".weight_")) << e.name;
      if (e.name == q0 + ".weight") {
        EXPECT_EQ(e.dtype, "BF16");
      }
    }
    export_checkpoint(*engine, src, tmp / "out");
    expect_same_tensors(tensors_of_dir(tmp / "out"), mixed);
    const nlohmann::json qc = config_of(tmp / "out")["quantization_config"];
    EXPECT_EQ(qc, config["quantization_config"]) << mode;
    EXPECT_EQ(qc[list].back(), q0) << mode;
    EXPECT_TRUE(export_quantization_config(*engine, engine->state_dict(StateDictForm::Dequantized),
                                           StateDictForm::Dequantized)
                    .is_null());
  }
}

TEST(ExportCheckpoint, ShardsWithAnIndex) {
  TempDir tmp;
  const auto engine = load(data_path("tiny-qwen2"), "fp8-row");
  const ExportSummary s =
      export_checkpoint(*engine, data_path("tiny-qwen2"), tmp / "out", {.max_shard_bytes = 100000});
  EXPECT_GT(s.files.size(), 2u);
  EXPECT_EQ(s.files.front(), fmt::format("model-00001-of-{:05d}.safetensors", s.files.size()));
  EXPECT_FALSE(fs::exists(tmp / "out" / "model.safetensors"));
  const auto index =
      nlohmann::json::parse(read_text_file(tmp / "out" / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], s.bytes_written);
  EXPECT_EQ(index["weight_map"].size(), s.tensors);
  for (const auto& f : s.files) {
    if (SafetensorsFile::open(tmp / "out" / f)->tensors().size() > 1) {
      EXPECT_LE(fs::file_size(tmp / "out" / f), 100000u + 4096u) << f;
    }
  }
  expect_same_tensors(tensors_of_dir(tmp / "out"),
                      tensors_of_file(data_path("tiny-qwen2/expected_fp8_row.safetensors")));
}

// An engine whose state dict fails part way through.
class FailingEngine final : public Engine {
 public:
  FailingEngine(std::unique_ptr<Engine> inner, size_t fail_after)
      : inner_(std::move(inner)), fail_after_(fail_after) {}
  const ModelConfig& config() const override { return inner_->config(); }
  const LoadReport& load_report() const override { return inner_->load_report(); }
  int64_t vocab_size() const override { return inner_->vocab_size(); }
  std::vector<float> logits(std::span<const int32_t> ids) override { return inner_->logits(ids); }
  void reset() override { inner_->reset(); }
  std::vector<float> feed(std::span<const int32_t> ids, bool all) override {
    return inner_->feed(ids, all);
  }
  int64_t position() const override { return inner_->position(); }
  int64_t max_context() const override { return inner_->max_context(); }
  const std::vector<int32_t>& eos_token_ids() const override { return inner_->eos_token_ids(); }
  uint64_t add_request(GenerationRequest r, TokenCallback cb) override {
    return inner_->add_request(std::move(r), std::move(cb));
  }
  void abort(uint64_t id) override { inner_->abort(id); }
  std::vector<RequestOutput> step() override { return inner_->step(); }
  bool has_unfinished() const override { return inner_->has_unfinished(); }
  EngineStats stats() const override { return inner_->stats(); }
  std::vector<StateDictEntry> state_dict(StateDictForm form) const override {
    return inner_->state_dict(form);
  }
  void read_state_dict_tensor(const std::string& name, StateDictForm form,
                              std::span<std::byte> out) const override {
    inner_->read_state_dict_tensor(name, form, out);
  }
  void visit_state_dict(StateDictForm form,
                        const std::function<void(const StateDictTensor&)>& visit) const override {
    size_t n = 0;
    inner_->visit_state_dict(form, [&](const StateDictTensor& t) {
      if (n++ == fail_after_) fail("{}: the device went away", t.entry.name);
      visit(t);
    });
  }
  std::vector<StateDictView> state_dict_views() override { return inner_->state_dict_views(); }
  WeightUpdateReport update_weights(std::span<const WeightTensor> tensors) override {
    return inner_->update_weights(tensors);
  }
  void sleep(int level) override { inner_->sleep(level); }
  void wake_up() override { inner_->wake_up(); }
  int sleep_level() const override { return inner_->sleep_level(); }
  void reset_prefix_cache() override { inner_->reset_prefix_cache(); }

 private:
  std::unique_ptr<Engine> inner_;
  size_t fail_after_;
};

TEST(ExportCheckpoint, FailureLeavesNothingBehind) {
  TempDir tmp;
  // Shards of one tensor each: several files are complete when the failure comes.
  const FailingEngine engine(load(data_path("tiny-llama"), "fp8-block"), 20);
  const std::string err = error_of([&] {
    export_checkpoint(engine, data_path("tiny-llama"), tmp / "out", {.max_shard_bytes = 1});
  });
  EXPECT_NE(err.find("the device went away"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(tmp / "out"));
  expect_only(tmp.path(), {});
}

TEST(ExportCheckpoint, OutputDirectoryErrors) {
  TempDir tmp;
  const auto engine = load(data_path("tiny-llama"), "fp8-row");
  fs::create_directory(tmp / "exists");
  std::string err =
      error_of([&] { export_checkpoint(*engine, data_path("tiny-llama"), tmp / "exists"); });
  EXPECT_EQ(err, (tmp / "exists").string() + ": already exists (choose a new output directory)");
  err = error_of(
      [&] { export_checkpoint(*engine, data_path("tiny-llama"), tmp / "no" / "such" / "out"); });
  EXPECT_EQ(err, (tmp / "no/such/out").string() + ": the parent directory does not exist");
  std::ofstream(tmp / "file") << "x";
  err =
      error_of([&] { export_checkpoint(*engine, data_path("tiny-llama"), tmp / "file" / "out"); });
  EXPECT_EQ(err, (tmp / "file/out").string() + ": the parent " + (tmp / "file").string() +
                     " is not a directory");
  expect_only(tmp.path(), {"exists", "file"});
}

// Permissions do not stop root, so this runs only for other users.
TEST(ExportCheckpoint, UnwritableParentIsRefused) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: permissions are not enforced";
  TempDir tmp;
  fs::create_directory(tmp / "ro");
  fs::permissions(tmp / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  const auto engine = load(data_path("tiny-llama"), "fp8-row");
  const std::string err =
      error_of([&] { export_checkpoint(*engine, data_path("tiny-llama"), tmp / "ro" / "out"); });
  fs::permissions(tmp / "ro", fs::perms::owner_all);
  EXPECT_EQ(err, (tmp / "ro/out").string() +
                     ": the parent directory is not writable (Permission denied)");
}

}  // namespace
}  // namespace fp8llm::test
