// `quantize_checkpoint` writes an FP8 model directory whose weights are the reference quantizer's
// bytes (expected_fp8_{row,block}.safetensors), which loads back as it is, and which is either
// complete or absent.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/file_util.h"
#include "formats/checkpoint.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "loader/host_sink.h"
#include "loader/load_plan.h"
#include "loader/quantize_checkpoint.h"
#include "test_util.h"

namespace fp8llm::test {
namespace {
namespace fs = std::filesystem;

// Every tensor of `expected` is in `dir`'s checkpoint with the same dtype, shape and bytes, and
// nothing else is.
void expect_checkpoint_equals(const fs::path& dir, const SafetensorsFile& expected,
                              bool tied_lm_head_dropped = false) {
  const Checkpoint got = Checkpoint::open(dir);
  size_t n = 0;
  for (const auto& t : expected.tensors()) {
    if (tied_lm_head_dropped && t.name == "lm_head.weight") continue;
    const CheckpointTensor* g = got.find(t.name);
    ASSERT_NE(g, nullptr) << t.name;
    EXPECT_EQ(g->info->dtype, t.dtype) << t.name;
    EXPECT_EQ(g->info->shape, t.shape) << t.name;
    ASSERT_EQ(g->info->nbytes, t.nbytes) << t.name;
    const TensorView a = got.view(t.name), b = expected.view(t);
    EXPECT_EQ(std::memcmp(a.data, b.data, b.nbytes), 0) << t.name << " differs";
    ++n;
  }
  EXPECT_EQ(n, got.tensors().size());
}

void check(const std::string& model, Fp8Scheme scheme, uint64_t max_shard) {
  TempDir tmp;
  const fs::path out = tmp / "out";
  const QuantizeSummary s = quantize_checkpoint(data_path(model), scheme, out, max_shard);
  const auto expected = SafetensorsFile::open(
      data_path(model) / (scheme == Fp8Scheme::Row ? "expected_fp8_row.safetensors"
                                                   : "expected_fp8_block.safetensors"));
  expect_checkpoint_equals(out, *expected);
  EXPECT_GT(s.quantized_tensors, 0u);
  // The written config names the layout; loading reads it as stored.
  const ModelConfig config = load_model_config(out);
  ASSERT_TRUE(config.quantization_config.has_value());
  EXPECT_EQ((*config.quantization_config)["quant_method"],
            scheme == Fp8Scheme::Block ? "fp8" : "compressed-tensors");
  const Checkpoint checkpoint = Checkpoint::open(out);
  const LoadPlan plan = build_load_plan(checkpoint, config, std::nullopt);
  EXPECT_EQ(plan.scheme, scheme);
  for (const auto& t : plan.tensors) EXPECT_FALSE(t.quantize.has_value());
  EXPECT_TRUE(fs::exists(out / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(out / "tokenizer_config.json"));
  EXPECT_TRUE(fs::exists(out / "generation_config.json"));
  EXPECT_FALSE(fs::exists(out / "reference.json"));  // fixtures, not part of the model
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename(), "out") << "left behind: " << e.path();
}

TEST(QuantizeCheckpoint, LlamaBlockEqualsReference) {
  check("tiny-llama", Fp8Scheme::Block, 1u << 30);
}
TEST(QuantizeCheckpoint, LlamaRowEqualsReference) {
  check("tiny-llama", Fp8Scheme::Row, 1u << 30);
}
TEST(QuantizeCheckpoint, Qwen2BlockEqualsReference) {
  check("tiny-qwen2", Fp8Scheme::Block, 1u << 30);
}

TEST(QuantizeCheckpoint, ShardsWithAnIndex) {
  TempDir tmp;
  const fs::path out = tmp / "out";
  const QuantizeSummary s =
      quantize_checkpoint(data_path("tiny-qwen2"), Fp8Scheme::Row, out, 100000);
  EXPECT_GT(s.files.size(), 2u);
  EXPECT_EQ(s.files.front(), fmt::format("model-00001-of-{:05d}.safetensors", s.files.size()));
  ASSERT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  // A shard stays under the limit unless it holds a single larger tensor.
  for (const auto& f : s.files) {
    if (SafetensorsFile::open(out / f)->tensors().size() > 1) {
      EXPECT_LE(fs::file_size(out / f), 100000u + 4096u) << f;
    }
  }
  const auto idx = nlohmann::json::parse(read_text_file(out / "model.safetensors.index.json"));
  EXPECT_EQ(idx["metadata"]["total_size"], s.bytes_written);
  expect_checkpoint_equals(
      out, *SafetensorsFile::open(data_path("tiny-qwen2/expected_fp8_row.safetensors")));
}

TEST(QuantizeCheckpoint, ExistingOutputIsRefused) {
  TempDir tmp;
  fs::create_directory(tmp / "out");
  const std::string err = error_of(
      [&] { quantize_checkpoint(data_path("tiny-llama"), Fp8Scheme::Block, tmp / "out"); });
  EXPECT_NE(err.find("out: already exists"), std::string::npos) << err;
}

TEST(QuantizeCheckpoint, AlreadyFp8IsRefused) {
  TempDir tmp;
  const std::string err = error_of(
      [&] { quantize_checkpoint(data_path("tiny-llama-fp8-block"), Fp8Scheme::Row, tmp / "out"); });
  EXPECT_NE(err.find("already an FP8 checkpoint (fine-grained fp8, block 128x128)"),
            std::string::npos)
      << err;
  EXPECT_FALSE(fs::exists(tmp / "out"));
}

TEST(QuantizeCheckpoint, FailureLeavesNothingBehind) {
  TempDir tmp;
  const fs::path src = tmp / "src";
  copy_dir(data_path("tiny-llama"), src);
  // Poison one projection (the last in the file) with a NaN: quantization fails mid-stream.
  std::vector<std::pair<std::string, TensorView>> ts;
  std::vector<std::byte> poisoned;
  {
    const auto file = SafetensorsFile::open(src / "model.safetensors");
    for (const auto& t : file->tensors()) ts.emplace_back(t.name, file->view(t));
    for (auto& [name, view] : ts) {
      if (name != "model.layers.1.self_attn.v_proj.weight") continue;
      poisoned.assign(view.data, view.data + view.nbytes);
      const uint16_t nan = 0x7FC0;
      std::memcpy(poisoned.data() + 10, &nan, 2);
      view.data = poisoned.data();
    }
    write_safetensors(src / "model.rewritten", ts);
  }
  fs::rename(src / "model.rewritten", src / "model.safetensors");
  const std::string err =
      error_of([&] { quantize_checkpoint(src, Fp8Scheme::Block, tmp / "out", 50000); });
  EXPECT_NE(err.find("model.layers.1.self_attn.v_proj.weight"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(tmp / "out"));
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename(), "src") << "left behind: " << e.path();
}

// The pid of a process that has exited (it could be reused meanwhile, which would make a stale
// directory look alive and be kept: never the other way round).
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

fs::path make_temp_dir(const fs::path& out, pid_t pid) {
  const fs::path dir = out.parent_path() / (out.filename().string() + ".fp8llm-tmp-" +
                                            std::to_string(pid) + "-0000abcd");
  fs::create_directory(dir);
  std::ofstream(dir / "model-00001-of-00002.safetensors") << "half written";
  return dir;
}

TEST(BuildDirectory, PermissionsFollowTheUmask) {
  TempDir tmp;
  const mode_t old = ::umask(027);
  build_directory_atomically(tmp / "out", [](const fs::path& d) { std::ofstream(d / "f") << "x"; });
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat((tmp / "out").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);
}

TEST(BuildDirectory, StaleTemporaryDirectoriesOfDeadProcessesAreRemoved) {
  TempDir tmp;
  const fs::path out = tmp / "out";
  const fs::path stale = make_temp_dir(out, dead_pid());
  const fs::path alive = make_temp_dir(out, ::getpid());            // a build under way
  const fs::path other = make_temp_dir(tmp / "other", dead_pid());  // another output's
  const fs::path unrelated = tmp / "out.tmp-123456";                // not made by this program
  fs::create_directory(unrelated);
  build_directory_atomically(out, [](const fs::path& d) { std::ofstream(d / "f") << "x"; });
  EXPECT_TRUE(fs::exists(out / "f"));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_TRUE(fs::exists(unrelated));
}

TEST(BuildDirectory, ALockedTemporaryDirectoryIsKept) {
  // A dead pid with the lock held: a live build in another pid namespace.
  TempDir tmp;
  const fs::path locked = make_temp_dir(tmp / "out", dead_pid());
  const int fd = ::open(locked.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  build_directory_atomically(tmp / "out", [](const fs::path& d) { std::ofstream(d / "f") << "x"; });
  ::close(fd);
  EXPECT_TRUE(fs::exists(locked));
}

TEST(BuildDirectory, TheTemporaryDirectoryIsNamedAndLockedWhileFilled) {
  TempDir tmp;
  build_directory_atomically(tmp / "out", [&](const fs::path& d) {
    EXPECT_EQ(d.filename().string().rfind("out.fp8llm-tmp-" + std::to_string(::getpid()) + "-", 0),
              0u)
        << d;
    const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);  // held by the builder (another open file)
    ::close(fd);
  });
}

}  // namespace
}  // namespace fp8llm::test
