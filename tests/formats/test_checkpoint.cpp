#include "formats/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_util.h"

namespace fp8llm {
namespace {

using test::copy_dir;
using test::data_path;
using test::TempDir;

constexpr const char* kIndex = "model.safetensors.index.json";

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// A copy of tiny-qwen2 whose index is changed by `edit`; returns the error of opening it.
std::string error_with_index_edit(const std::function<void(nlohmann::json&)>& edit) {
  TempDir dir;
  copy_dir(data_path("tiny-qwen2"), dir.path());
  nlohmann::json index = read_json(dir / kIndex);
  edit(index);
  write_text(dir / kIndex, index.dump(2));
  try {
    Checkpoint::open(dir.path());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string open_error(const std::filesystem::path& dir) {
  try {
    Checkpoint::open(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_has(const std::string& msg, std::initializer_list<std::string> fragments) {
  ASSERT_FALSE(msg.empty()) << "opened without error";
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  for (const auto& f : fragments)
    EXPECT_NE(msg.find(f), std::string::npos) << "no '" << f << "' in: " << msg;
}

// --- The fixtures -----------------------------------------------------------------------------

TEST(Checkpoint, ShardedQwen2) {
  const auto dir = data_path("tiny-qwen2");
  const Checkpoint ck = Checkpoint::open(dir);
  EXPECT_EQ(ck.dir(), dir);
  ASSERT_EQ(ck.files().size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(ck.files()[i]->path().filename(),
              fmt::format("model-0000{}-of-00006.safetensors", i + 1));
  }
  const auto weight_map = read_json(dir / kIndex).at("weight_map");
  ASSERT_EQ(ck.tensors().size(), weight_map.size());

  // File by file, each in offset order; every tensor in the file the index names.
  size_t file_pos = 0;
  uint64_t last_offset = 0;
  for (const auto& t : ck.tensors()) {
    while (file_pos < ck.files().size() && ck.files()[file_pos].get() != t.file) {
      ++file_pos;
      last_offset = 0;
    }
    ASSERT_LT(file_pos, ck.files().size()) << t.info->name << " out of file order";
    EXPECT_GE(t.info->offset, last_offset) << t.info->name;
    last_offset = t.info->offset;
    EXPECT_EQ(t.file->path().filename(), weight_map.at(t.info->name).get<std::string>());
  }
  EXPECT_EQ(ck.tensors().front().info->name, "model.embed_tokens.weight");
  EXPECT_EQ(ck.tensors().back().info->name, "lm_head.weight");

  // The index's own total.
  EXPECT_EQ(ck.total_bytes(),
            read_json(dir / kIndex).at("metadata").at("total_size").get<uint64_t>());

  const CheckpointTensor* bias = ck.find("model.layers.1.self_attn.q_proj.bias");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->info->shape, Shape{192});
  EXPECT_EQ(ck.find("model.layers.9.nothing"), nullptr);
  const TensorView v = ck.view("model.layers.1.self_attn.q_proj.bias");
  const TensorView direct = bias->file->view("model.layers.1.self_attn.q_proj.bias");
  EXPECT_EQ(v.data, direct.data);  // the same mapping, no copy
  EXPECT_EQ(v.nbytes, 192u * 2);
}

TEST(Checkpoint, SingleFileLlama) {
  const auto dir = data_path("tiny-llama");
  const Checkpoint ck = Checkpoint::open(dir);
  ASSERT_EQ(ck.files().size(), 1u);
  EXPECT_EQ(ck.files()[0]->path().filename(), "model.safetensors");
  ASSERT_EQ(ck.tensors().size(), 21u);
  EXPECT_EQ(ck.total_bytes(), std::filesystem::file_size(dir / "model.safetensors") - 8 - 2232);
  for (size_t i = 1; i < ck.tensors().size(); ++i) {
    EXPECT_LT(ck.tensors()[i - 1].info->offset, ck.tensors()[i].info->offset);
  }
  EXPECT_EQ(ck.view("model.norm.weight").shape, Shape{256});
}

TEST(Checkpoint, ViewOfMissingTensorNamesTheDirectory) {
  const Checkpoint ck = Checkpoint::open(data_path("tiny-llama"));
  try {
    ck.view("model.layers.7.mlp.up_proj.weight");
    FAIL() << "no error";
  } catch (const Error& e) {
    expect_has(e.what(), {"tiny-llama", "'model.layers.7.mlp.up_proj.weight'"});
  }
}

// --- Which files ------------------------------------------------------------------------------

TEST(CheckpointErrors, NotADirectory) {
  expect_has(open_error(data_path("tiny-llama/config.json")), {"config.json", "not a directory"});
  TempDir dir;
  expect_has(open_error(dir / "absent"), {"absent", "not a directory"});
}

TEST(CheckpointErrors, NoSafetensorsAtAll) {
  TempDir dir;
  write_text(dir / "config.json", "{}");
  expect_has(open_error(dir.path()),
             {dir.path().string(), "no model.safetensors", "no .safetensors files at all"});
}

TEST(CheckpointErrors, SeveralShardsWithoutIndex) {
  TempDir dir;
  copy_dir(data_path("tiny-qwen2"), dir.path());
  std::filesystem::remove(dir / kIndex);
  expect_has(open_error(dir.path()),
             {"found several .safetensors files without an index",
              "model-00001-of-00006.safetensors", "model-00006-of-00006.safetensors"});
}

TEST(CheckpointErrors, CorruptShardNamesShardAndTensor) {
  TempDir dir;
  copy_dir(data_path("tiny-qwen2"), dir.path());
  const auto shard = dir / "model-00006-of-00006.safetensors";
  std::filesystem::resize_file(shard, std::filesystem::file_size(shard) - 2);
  expect_has(open_error(dir.path()),
             {"model-00006-of-00006.safetensors", "tensor 'lm_head.weight'", "past the end"});
}

// --- The index --------------------------------------------------------------------------------

TEST(CheckpointErrors, IndexNotJson) {
  TempDir dir;
  copy_dir(data_path("tiny-qwen2"), dir.path());
  write_text(dir / kIndex, "{\"weight_map\": {");
  expect_has(open_error(dir.path()), {kIndex, "not valid JSON"});
}

TEST(CheckpointErrors, IndexShape) {
  expect_has(error_with_index_edit([](auto& j) { j = nlohmann::json::array(); }),
             {kIndex, "is a JSON array, expected an object"});
  expect_has(error_with_index_edit([](auto& j) { j.erase("weight_map"); }),
             {kIndex, "no 'weight_map'"});
  expect_has(error_with_index_edit([](auto& j) { j["weight_map"] = "x"; }),
             {kIndex, "weight_map is a JSON string"});
  expect_has(error_with_index_edit([](auto& j) { j["weight_map"]["model.norm.weight"] = 3; }),
             {kIndex, "tensor 'model.norm.weight' maps to 3, expected a file name"});
}

TEST(CheckpointErrors, IndexPointsOutsideTheDirectory) {
  expect_has(error_with_index_edit([](auto& j) {
               j["weight_map"]["model.norm.weight"] = "../tiny-llama/model.safetensors";
             }),
             {kIndex, "tensor 'model.norm.weight'", "not a file inside the model directory"});
  expect_has(
      error_with_index_edit([](auto& j) { j["weight_map"]["model.norm.weight"] = "/etc/passwd"; }),
      {kIndex, "'/etc/passwd'"});
}

TEST(CheckpointErrors, MissingShard) {
  TempDir dir;
  copy_dir(data_path("tiny-qwen2"), dir.path());
  std::filesystem::remove(dir / "model-00003-of-00006.safetensors");
  expect_has(open_error(dir.path()),
             {kIndex, "shard 'model-00003-of-00006.safetensors'", "does not exist"});
}

TEST(CheckpointErrors, IndexNamesTensorAbsentFromShard) {
  expect_has(error_with_index_edit([](auto& j) {
               j["weight_map"]["model.layers.5.extra.weight"] = "model-00001-of-00006.safetensors";
             }),
             {kIndex, "tensor 'model.layers.5.extra.weight'",
              "mapped to model-00001-of-00006.safetensors, which does not contain it"});
}

TEST(CheckpointErrors, IndexNamesTheWrongShard) {
  // gate_proj of layer 0 lives in shard 2 (which the index still names for other tensors).
  expect_has(error_with_index_edit([](auto& j) {
               j["weight_map"]["model.layers.0.mlp.gate_proj.weight"] =
                   "model-00001-of-00006.safetensors";
             }),
             {kIndex,
              "tensor 'model.layers.0.mlp.gate_proj.weight' is mapped to "
              "model-00001-of-00006.safetensors",
              "it is in model-00002-of-00006.safetensors"});
  // lm_head.weight is alone in shard 6, which the index then no longer names at all.
  expect_has(error_with_index_edit([](auto& j) {
               j["weight_map"]["lm_head.weight"] = "model-00001-of-00006.safetensors";
             }),
             {kIndex, "tensor 'lm_head.weight' is mapped to model-00001-of-00006.safetensors",
              "does not contain it"});
}

TEST(CheckpointErrors, ShardTensorMissingFromIndex) {
  expect_has(
      error_with_index_edit([](auto& j) { j["weight_map"].erase("model.norm.weight"); }),
      {"tensor 'model.norm.weight' is in model-00005-of-00006.safetensors but not in", kIndex});
}

TEST(CheckpointErrors, TensorInTwoShards) {
  TempDir dir;
  copy_dir(data_path("tiny-qwen2"), dir.path());
  // Rewrite shard 6 with lm_head.weight plus a second copy of the embedding from shard 1.
  {
    const auto shard1 = SafetensorsFile::open(dir / "model-00001-of-00006.safetensors");
    const auto shard6 = SafetensorsFile::open(dir / "model-00006-of-00006.safetensors");
    write_safetensors(dir / "model-00006-of-00006.safetensors.new",
                      {{"lm_head.weight", shard6->view("lm_head.weight")},
                       {"model.embed_tokens.weight", shard1->view("model.embed_tokens.weight")}});
  }
  std::filesystem::rename(dir / "model-00006-of-00006.safetensors.new",
                          dir / "model-00006-of-00006.safetensors");
  expect_has(open_error(dir.path()),
             {"tensor 'model.embed_tokens.weight' is in two shards",
              "model-00001-of-00006.safetensors", "model-00006-of-00006.safetensors"});
}

}  // namespace
}  // namespace fp8llm
