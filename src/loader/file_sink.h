// A sink that writes the streamed weights to safetensors files instead of memory: projections the
// plan quantizes are quantized on the CPU (the same bit-exact quantizer HostSink uses) and written
// as F8_E4M3 + F32 scales under their checkpoint names (`<weight>_scale_inv` for block,
// `<weight>_scale` for row); pre-quantized projections are written as stored (scales as F32);
// everything else is copied byte for byte. Tensors go to shards of at most `max_shard_bytes`
// (a tensor larger than that gets a shard of its own), in stream order; with more than one shard
// the files are `model-0000i-of-0000n.safetensors` plus `model.safetensors.index.json`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
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

// The tensors FileSink writes for `plan`, in the order it writes them.
std::vector<OutputTensor> output_tensors(const LoadPlan& plan);

class FileSink : public WeightSink {
 public:
  // Writes into the existing directory `dir`.
  FileSink(const LoadPlan& plan, std::filesystem::path dir, uint64_t max_shard_bytes);
  ~FileSink() override;
  void consume(const PlannedTensor& tensor, const TensorView& source) override;
  // Completes the last shard and writes the index (call once streaming has finished).
  void finish();

  // Names of the files written (relative to `dir`).
  const std::vector<std::string>& files() const { return files_; }

 private:
  void write(const OutputTensor& expected, const std::byte* data, uint64_t nbytes);

  std::filesystem::path dir_;
  std::vector<OutputTensor> outputs_;
  std::vector<size_t> shard_of_;  // output index -> shard
  std::vector<std::string> files_;
  size_t next_ = 0;  // next output to write
  std::unique_ptr<SafetensorsWriter> writer_;
  size_t writer_shard_ = 0;
};

}  // namespace fp8llm
