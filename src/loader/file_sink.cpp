#include "loader/file_sink.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "loader/host_sink.h"
#include "loader/value_checks.h"
#include "quant/quantizer.h"

namespace fp8llm {

CheckpointWriter::CheckpointWriter(std::filesystem::path dir, std::vector<OutputTensor> tensors,
                                   uint64_t max_shard_bytes)
    : dir_(std::move(dir)), tensors_(std::move(tensors)) {
  FP8LLM_CHECK(max_shard_bytes > 0, "--max-shard-bytes must be positive");
  size_t shard = 0;
  uint64_t in_shard = 0;
  for (const auto& t : tensors_) {
    if (in_shard > 0 && in_shard + t.nbytes > max_shard_bytes) {
      ++shard;
      in_shard = 0;
    }
    in_shard += t.nbytes;
    shard_of_.push_back(shard);
  }
  const size_t shards = shard_of_.empty() ? 1 : shard_of_.back() + 1;
  for (size_t i = 0; i < shards; ++i) {
    files_.push_back(shards == 1
                         ? "model.safetensors"
                         : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards));
  }
}

CheckpointWriter::~CheckpointWriter() = default;

uint64_t CheckpointWriter::total_bytes() const {
  uint64_t total = 0;
  for (const auto& t : tensors_) total += t.nbytes;
  return total;
}

const OutputTensor& CheckpointWriter::next() const {
  FP8LLM_CHECK(next_ < tensors_.size(), "{}: all {} tensors are already written", dir_.string(),
               tensors_.size());
  return tensors_[next_];
}

void CheckpointWriter::write(const std::string& name, std::span<const std::byte> bytes) {
  const OutputTensor& expected = next();
  FP8LLM_CHECK(expected.name == name, "tensor '{}' arrived out of order (expected '{}')", name,
               expected.name);
  FP8LLM_CHECK(bytes.size() == expected.nbytes, "tensor '{}': {} bytes, expected {}", name,
               bytes.size(), expected.nbytes);
  const size_t shard = shard_of_[next_];
  if (!writer_ || writer_shard_ != shard) {
    if (writer_) writer_->finish();
    writer_ = std::make_unique<SafetensorsWriter>(dir_ / files_[shard]);
    writer_shard_ = shard;
    for (size_t i = next_; i < tensors_.size() && shard_of_[i] == shard; ++i)
      writer_->declare(tensors_[i].name, tensors_[i].dtype, tensors_[i].shape);
  }
  writer_->write(bytes);
  ++next_;
}

void CheckpointWriter::finish() {
  FP8LLM_CHECK(next_ == tensors_.size(), "{}: only {} of {} tensors were written", dir_.string(),
               next_, tensors_.size());
  if (!writer_) {  // no tensors at all: still one (empty) weight file
    writer_ = std::make_unique<SafetensorsWriter>(dir_ / files_.front());
  }
  writer_->finish();
  writer_.reset();
  if (files_.size() > 1) {
    nlohmann::json map = nlohmann::json::object();
    for (size_t i = 0; i < tensors_.size(); ++i) map[tensors_[i].name] = files_[shard_of_[i]];
    nlohmann::json index;
    index["metadata"] = {{"total_size", total_bytes()}};
    index["weight_map"] = map;
    write_text_file_atomically(dir_ / "model.safetensors.index.json", index.dump(2));
  }
}

std::vector<OutputTensor> output_tensors(const LoadPlan& plan) {
  std::vector<OutputTensor> out;
  for (const PlannedTensor& t : plan.tensors) {
    if (t.quantize) {
      const int64_t n = t.spec.shape[0], k = t.spec.shape[1];
      const Shape ss = weight_scale_shape(*t.quantize, n, k);
      out.push_back({t.spec.name, DType::F8_E4M3, t.spec.shape, static_cast<uint64_t>(n * k)});
      out.push_back({weight_scale_name(*t.quantize, t.spec.name), DType::F32, ss,
                     static_cast<uint64_t>(num_elements(ss)) * sizeof(float)});
    } else if (t.is_weight_scale) {
      out.push_back({t.spec.name, DType::F32, t.spec.shape,
                     static_cast<uint64_t>(num_elements(t.spec.shape)) * sizeof(float)});
    } else {
      out.push_back(
          {t.spec.name, t.source.info->dtype, t.source.info->shape, t.source.info->nbytes});
    }
  }
  return out;
}

FileSink::FileSink(const LoadPlan& plan, std::filesystem::path dir, uint64_t max_shard_bytes)
    : writer_(std::move(dir), output_tensors(plan), max_shard_bytes) {}

void FileSink::write(std::span<const std::byte> bytes) {
  writer_.write(writer_.next().name, bytes);
}

void FileSink::consume(const PlannedTensor& t, const TensorView& source) {
  check_planned_tensor(t, source);
  if (t.quantize) {
    const QuantizedTensor q = quantize_weight(*t.quantize, source, t.spec.name);
    write(q.q.bytes);
    write(q.scale.bytes);
  } else if (t.is_weight_scale) {
    HostTensor scale(DType::F32, t.spec.shape);
    convert_weight_scale(source, scale);
    write(scale.bytes);
  } else {
    write({source.data, source.nbytes});
  }
}

}  // namespace fp8llm
