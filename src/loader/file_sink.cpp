#include "loader/file_sink.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "loader/host_sink.h"
#include "quant/quantizer.h"

namespace fp8llm {

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
    : dir_(std::move(dir)), outputs_(output_tensors(plan)) {
  FP8LLM_CHECK(max_shard_bytes > 0, "--max-shard-bytes must be positive");
  size_t shard = 0;
  uint64_t in_shard = 0;
  for (const auto& o : outputs_) {
    if (in_shard > 0 && in_shard + o.nbytes > max_shard_bytes) {
      ++shard;
      in_shard = 0;
    }
    in_shard += o.nbytes;
    shard_of_.push_back(shard);
  }
  const size_t shards = shard_of_.empty() ? 1 : shard_of_.back() + 1;
  for (size_t i = 0; i < shards; ++i) {
    files_.push_back(shards == 1
                         ? "model.safetensors"
                         : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards));
  }
}

FileSink::~FileSink() = default;

void FileSink::write(const OutputTensor& expected, const std::byte* data, uint64_t nbytes) {
  FP8LLM_CHECK(next_ < outputs_.size() && outputs_[next_].name == expected.name,
               "tensor '{}' arrived out of order", expected.name);
  FP8LLM_CHECK(nbytes == expected.nbytes, "tensor '{}': {} bytes, expected {}", expected.name,
               nbytes, expected.nbytes);
  const size_t shard = shard_of_[next_];
  if (!writer_ || writer_shard_ != shard) {
    if (writer_) writer_->finish();
    writer_ = std::make_unique<SafetensorsWriter>(dir_ / files_[shard]);
    writer_shard_ = shard;
    for (size_t i = next_; i < outputs_.size() && shard_of_[i] == shard; ++i)
      writer_->declare(outputs_[i].name, outputs_[i].dtype, outputs_[i].shape);
  }
  writer_->write({data, nbytes});
  ++next_;
}

void FileSink::consume(const PlannedTensor& t, const TensorView& source) {
  if (t.quantize) {
    const QuantizedTensor q = quantize_weight(*t.quantize, source, t.spec.name);
    write(outputs_[next_], q.q.bytes.data(), q.q.bytes.size());
    write(outputs_[next_], q.scale.bytes.data(), q.scale.bytes.size());
  } else if (t.is_weight_scale) {
    HostTensor scale(DType::F32, t.spec.shape);
    convert_weight_scale(source, scale);
    write(outputs_[next_], scale.bytes.data(), scale.bytes.size());
  } else {
    write(outputs_[next_], source.data, source.nbytes);
  }
}

void FileSink::finish() {
  FP8LLM_CHECK(next_ == outputs_.size(), "{}: only {} of {} tensors were written", dir_.string(),
               next_, outputs_.size());
  if (writer_) writer_->finish();
  writer_.reset();
  if (files_.size() > 1) {
    nlohmann::json index;
    uint64_t total = 0;
    nlohmann::json map = nlohmann::json::object();
    for (size_t i = 0; i < outputs_.size(); ++i) {
      total += outputs_[i].nbytes;
      map[outputs_[i].name] = files_[shard_of_[i]];
    }
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = map;
    write_text_file_atomically(dir_ / "model.safetensors.index.json", index.dump(2));
  }
}

}  // namespace fp8llm
