// `fp8llm synth` writes a complete model directory or nothing: built under a temporary name and
// renamed into place, never over an existing directory, with sizes checked before any work; with
// --lora-rank, a PEFT adapter of the preset's shape that the engine reads.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/file_util.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "lora/peft_adapter.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {

namespace fs = std::filesystem;

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}));
}

// `fp8llm synth` of the small preset with `flags`, into `out`.
CliResult synth_small(const std::string& flags, const fs::path& out) {
  return run_cli("synth --preset small " + flags + " --out " + out.string());
}

// synth_small(flags, out) is refused with exit code 2 and exactly `err`, and writes nothing.
void expect_refused(const std::string& flags, const fs::path& out, const std::string& err) {
  const CliResult r = synth_small(flags, out);
  EXPECT_EQ(r.exit_code, 2) << flags;
  EXPECT_EQ(r.err, err) << flags;
  EXPECT_FALSE(fs::exists(out)) << flags;
}

TEST(SynthCli, WritesAModelDirectoryThatLoads) {
  TempDir tmp;
  const fs::path out = tmp / "small";
  const CliResult r = synth_small("--layers 1 --shard-bytes 50000000", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load_model_config(out).num_layers, 1);
  EXPECT_GT(Checkpoint::open(out).files().size(), 1u);
  EXPECT_EQ(entries(tmp.path()), 1u);  // no temporary directory left
  // Created as mkdir creates directories: 0777 less the umask.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0777 & ~mask);
}

TEST(SynthCli, AnExistingDirectoryIsLeftAlone) {
  TempDir tmp;
  const fs::path out = tmp / "model";
  fs::create_directory(out);
  std::ofstream(out / "model-00001-of-00009.safetensors") << "an old shard";
  const CliResult r = synth_small("--layers 1", out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: " + out.string() + ": already exists (choose a new output directory)\n");
  EXPECT_EQ(entries(out), 1u);
}

TEST(SynthCli, LayerCountsOutOfRangeAreErrors) {
  TempDir tmp;
  for (const std::string layers : {"0", "-3", "1000000000"}) {
    expect_refused("--layers " + layers, tmp / "out",
                   "error: --layers " + layers +
                       ": must be between 1 and 1024 (the deepest Llama-family models have 126)\n");
  }
}

TEST(SynthCli, MaxPositionsOverridesThePresetsContext) {
  TempDir tmp;
  const fs::path out = tmp / "long";
  const CliResult r = synth_small("--layers 1 --max-positions 40000", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load_model_config(out).max_position_embeddings, 40000);
  for (const std::string bad : {"0", "-1", "2000000"}) {
    expect_refused("--layers 1 --max-positions " + bad, tmp / "bad",
                   "error: --max-positions " + bad + ": must be between 1 and 1048576\n");
  }
}

TEST(SynthCli, WritesALoraAdapterOfThePresetsShape) {
  TempDir tmp;
  const fs::path out = tmp / "adapter";
  const CliResult r = synth_small("--layers 2 --lora-rank 4 --seed 3", out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(entries(tmp.path()), 1u);
  const auto file = SafetensorsFile::open(out / "adapter_model.safetensors");
  EXPECT_EQ(file->tensors().size(), 2u * 7u * 2u);  // layers x projections x (A, B)
  // The engine's reader takes it for the preset's shape: all seven projections, rank 4.
  const ModelConfig small =
      parse_model_config(nlohmann::json{{"architectures", {"LlamaForCausalLM"}},
                                        {"model_type", "llama"},
                                        {"hidden_size", 1024},
                                        {"intermediate_size", 4096},
                                        {"num_hidden_layers", 2},
                                        {"num_attention_heads", 16},
                                        {"num_key_value_heads", 4},
                                        {"vocab_size", 32000},
                                        {"rms_norm_eps", 1e-5},
                                        {"max_position_embeddings", 4096}},
                         "small");
  const LoraAdapter a = load_peft_adapter(small, out);
  EXPECT_EQ(a.rank, 4);
  EXPECT_EQ(a.modules.size(), 14u);
  EXPECT_FLOAT_EQ(a.scale, 2.0f);  // lora_alpha 2r
  // Out of range ranks, and an existing directory, are errors that write nothing.
  for (const std::string rank : {"-1", "513"}) {
    expect_refused("--layers 2 --lora-rank " + rank, tmp / "bad",
                   "error: --lora-rank " + rank + ": must be in [1, 512]\n");
  }
  EXPECT_EQ(synth_small("--lora-rank 4", out).exit_code, 2);
}

}  // namespace
}  // namespace fp8llm::test
