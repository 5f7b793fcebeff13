// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the
// tensor bytes (offsets are relative to the end of the header).
//
// Reading maps the file and validates the whole header before any tensor is used: header length
// bounds, valid JSON, known dtype names, shape x dtype size == byte length, offsets inside the
// file, no overlapping ranges. Each failure is one fp8llm::Error naming the file and the tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace fp8llm {

// Largest header we accept (the format's own limit is 100 MB).
inline constexpr uint64_t kMaxSafetensorsHeader = 100u << 20;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t offset = 0;  // absolute byte offset of the data in the file
  uint64_t nbytes = 0;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by offset (file order)
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + header length
};

// Parses and validates a header. `file_bytes` is the whole file (or at least its first 8 + N
// bytes, with `file_size` the real size); `label` names the file in errors.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file_bytes,
                                           uint64_t file_size, const std::string& label);

// A read-only, memory-mapped safetensors file. Views stay valid while the object lives.
class SafetensorsFile {
  // Only open() can make a Key, so only open() can construct one (through make_shared).
  struct Key {
    explicit Key() = default;
  };

 public:
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  explicit SafetensorsFile(Key) {}
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  uint64_t file_size() const { return size_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  // nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  // Zero-copy view; errors if `name` is absent.
  TensorView view(std::string_view name) const;
  TensorView view(const TensorInfo& info) const;
  // The open file descriptor, for pread-based streaming.
  int fd() const { return fd_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  const std::byte* map_ = nullptr;
  uint64_t size_ = 0;
  SafetensorsHeader header_;
  std::map<std::string, size_t, std::less<>> index_;
};

// Writes a safetensors file tensor by tensor, so a large checkpoint never has to be in memory at
// once. Declare every tensor first (the header comes first in the file), then write their bytes in
// the declared order. The file appears at `path` only when finish() succeeds (temporary file +
// rename); if the writer is destroyed before finish(), the temporary file is removed. A device or
// FIFO at `path` is written in place instead (core/file_util.h).
class SafetensorsWriter {
 public:
  explicit SafetensorsWriter(std::filesystem::path path,
                             std::map<std::string, std::string> metadata = {{"format", "pt"}});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void declare(const std::string& name, DType dtype, const Shape& shape);
  // Bytes of the next declared tensor (may be called several times per tensor, in pieces).
  void write(std::span<const std::byte> bytes);
  void finish();

 private:
  void begin();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes whole in-memory tensors in one call (atomically).
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, TensorView>>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace fp8llm
