// Writing weights into a checkpoint's safetensors files.
//
// CheckpointWriter writes a list of tensors known in advance, one at a time in that order, into
// shards of at most `max_shard_bytes` (a tensor larger than that gets a shard of its own); with
// more than one shard the files are `model-0000i-of-0000n.safetensors` plus
// `model.safetensors.index.json`, else one `model.safetensors`. Only one tensor's bytes are ever
// held, by the caller. `fp8llm quantize` (through FileSink) and `fp8llm export` both write with it.
//
// FileSink writes the streamed weights of a LoadPlan with a CheckpointWriter instead of into
// memory: projections the plan quantizes are quantized on the CPU (the same bit-exact quantizer
// HostSink uses) and written as F8_E4M3 + F32 scales under their checkpoint names
// (`<weight>_scale_inv` for block, `<weight>_scale` for row); pre-quantized projections are written
// as stored (scales as F32); everything else is copied byte for byte, in stream order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "loader/weight_stream.h"

namespace fp8llm {

// One tensor of the written checkpoint.
struct OutputTensor {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t nbytes;
};

class CheckpointWriter {
 public:
  // Writes `tensors` into the existing directory `dir`.
  CheckpointWriter(std::filesystem::path dir, std::vector<OutputTensor> tensors,
                   uint64_t max_shard_bytes);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // The bytes of the next tensor, which must be `name`.
  void write(const std::string& name, std::span<const std::byte> bytes);
  // Completes the last shard and writes the index (after every tensor is written).
  void finish();

  const std::vector<OutputTensor>& tensors() const { return tensors_; }
  // Names of the files written (relative to `dir`).
  const std::vector<std::string>& files() const { return files_; }
  uint64_t total_bytes() const;
  // The tensor write() expects next.
  const OutputTensor& next() const;

 private:
  std::filesystem::path dir_;
  std::vector<OutputTensor> tensors_;
  std::vector<size_t> shard_of_;  // tensor index -> shard
  std::vector<std::string> files_;
  size_t next_ = 0;
  std::unique_ptr<SafetensorsWriter> writer_;
  size_t writer_shard_ = 0;
};

// The tensors FileSink writes for `plan`, in the order it writes them.
std::vector<OutputTensor> output_tensors(const LoadPlan& plan);

class FileSink : public WeightSink {
 public:
  // Writes into the existing directory `dir`.
  FileSink(const LoadPlan& plan, std::filesystem::path dir, uint64_t max_shard_bytes);
  void consume(const PlannedTensor& tensor, const TensorView& source) override;
  // Completes the last shard and writes the index (call once streaming has finished).
  void finish() { writer_.finish(); }

  // Names of the files written (relative to `dir`).
  const std::vector<std::string>& files() const { return writer_.files(); }

 private:
  void write(std::span<const std::byte> bytes);

  CheckpointWriter writer_;
};

}  // namespace fp8llm
