// The weights of a Hugging Face model directory: one `model.safetensors`, or shards listed in
// `model.safetensors.index.json`. The index is validated against the shards: every entry must
// point at a file that exists and holds that tensor, and no tensor may appear in two shards.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/safetensors.h"

namespace fp8llm {

struct CheckpointTensor {
  const SafetensorsFile* file;
  const TensorInfo* info;
};

class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& model_dir);

  const std::filesystem::path& dir() const { return dir_; }
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }
  // Every tensor, file by file, each file's tensors in offset order: the order to read them in.
  const std::vector<CheckpointTensor>& tensors() const { return tensors_; }
  // nullptr when absent.
  const CheckpointTensor* find(std::string_view name) const;
  // Zero-copy view; errors (naming the directory) when absent.
  TensorView view(std::string_view name) const;
  // Sum of all tensors' bytes.
  uint64_t total_bytes() const;

 private:
  std::filesystem::path dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::vector<CheckpointTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
};

}  // namespace fp8llm
