#include "formats/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"

namespace fp8llm {
namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

// The index names shards relative to the model directory; a name that leaves it (absolute, or
// with "..") would read files the user did not point us at.
bool stays_inside(const std::filesystem::path& rel) {
  if (rel.empty() || rel.is_absolute() || rel.has_root_name()) return false;
  return std::none_of(rel.begin(), rel.end(), [](const auto& part) { return part == ".."; });
}

std::vector<std::string> safetensors_in(const std::filesystem::path& dir) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".safetensors") found.push_back(e.path().filename().string());
  }
  std::sort(found.begin(), found.end());
  return found;
}

// weight_map of the index: tensor name -> shard file name, validated for shape.
std::map<std::string, std::string> read_weight_map(const std::filesystem::path& index_path) {
  const std::string label = index_path.string();
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(read_text_file(index_path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", label, e.what());
  }
  check_json_depth(index, label);
  if (!index.is_object()) fail("{}: is a JSON {}, expected an object", label, index.type_name());
  const auto it = index.find("weight_map");
  if (it == index.end()) fail("{}: no 'weight_map'", label);
  if (!it->is_object())
    fail("{}: weight_map is a JSON {}, expected an object", label, it->type_name());
  std::map<std::string, std::string> weight_map;
  for (const auto& [name, file] : it->items()) {
    if (!file.is_string())
      fail("{}: tensor '{}' maps to {}, expected a file name", label, name, file.dump());
    const auto& file_name = file.get_ref<const std::string&>();
    if (!stays_inside(file_name)) {
      fail("{}: tensor '{}' maps to '{}', which is not a file inside the model directory", label,
           name, file_name);
    }
    weight_map.emplace(name, file_name);
  }
  return weight_map;
}

}  // namespace

Checkpoint Checkpoint::open(const std::filesystem::path& model_dir) {
  Checkpoint ck;
  ck.dir_ = model_dir;
  const std::string dir_label = model_dir.string();
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) fail("{}: not a directory", dir_label);

  const auto index_path = model_dir / kIndexName;
  const auto single_path = model_dir / kSingleName;
  if (std::filesystem::exists(index_path, ec)) {
    const std::string label = index_path.string();
    const auto weight_map = read_weight_map(index_path);

    // Shards sorted by file name, so tensors() follows the order the files were written in.
    std::map<std::string, std::string> first_tensor_of;  // shard -> a tensor mapped to it
    for (const auto& [name, file] : weight_map) first_tensor_of.emplace(file, name);
    std::map<std::string, const SafetensorsFile*> shard_by_name;
    for (const auto& [file, tensor] : first_tensor_of) {
      const auto path = model_dir / file;
      if (!std::filesystem::exists(path, ec)) {
        fail("{}: shard '{}' (of tensor '{}') does not exist", label, file, tensor);
      }
      ck.files_.push_back(SafetensorsFile::open(path));
      shard_by_name.emplace(file, ck.files_.back().get());
    }

    // Every tensor in exactly one shard, and that shard the one the index names.
    std::map<std::string, std::string, std::less<>> found_in;  // tensor -> shard holding it
    for (const auto& [file, shard] : shard_by_name) {
      for (const auto& t : shard->tensors()) {
        const auto [it, inserted] = found_in.emplace(t.name, file);
        if (!inserted) {
          fail("{}: tensor '{}' is in two shards, {} and {}", dir_label, t.name, it->second, file);
        }
      }
    }
    for (const auto& [name, file] : weight_map) {
      if (shard_by_name.at(file)->find(name)) continue;
      const auto elsewhere = found_in.find(name);
      if (elsewhere != found_in.end()) {
        fail("{}: tensor '{}' is mapped to {}, but it is in {}", label, name, file,
             elsewhere->second);
      }
      fail("{}: tensor '{}' is mapped to {}, which does not contain it", label, name, file);
    }
    for (const auto& [name, file] : found_in) {
      if (!weight_map.contains(name)) {
        fail("{}: tensor '{}' is in {} but not in {}", dir_label, name, file, kIndexName);
      }
    }
  } else if (std::filesystem::exists(single_path, ec)) {
    ck.files_.push_back(SafetensorsFile::open(single_path));
  } else {
    const auto found = safetensors_in(model_dir);
    if (found.empty()) {
      fail("{}: no {} or {} (and no .safetensors files at all)", dir_label, kSingleName,
           kIndexName);
    }
    fail("{}: no {} or {}; found {} without an index: {}", dir_label, kSingleName, kIndexName,
         found.size() == 1 ? "one .safetensors file" : "several .safetensors files",
         fmt::join(found, ", "));
  }

  for (const auto& file : ck.files_) {
    for (const auto& info : file->tensors()) {
      ck.index_.emplace(info.name, ck.tensors_.size());
      ck.tensors_.push_back({file.get(), &info});
    }
  }
  return ck;
}

const CheckpointTensor* Checkpoint::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

TensorView Checkpoint::view(std::string_view name) const {
  const CheckpointTensor* t = find(name);
  if (!t) fail("{}: no tensor '{}' in the checkpoint", dir_.string(), name);
  return t->file->view(*t->info);
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t total = 0;
  for (const auto& t : tensors_) total += t.info->nbytes;
  return total;
}

}  // namespace fp8llm
