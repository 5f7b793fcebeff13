// Whole-file reads, crash-safe writes, and the file-type rules every input and output follows.
//
// Inputs (config.json, tokenizer.json, weights, ...) must be regular files or links to one: a FIFO
// or a device in their place would block or read without end, so it is an Error that says what
// the path is. Outputs never replace anything but a regular file: a regular file (or a new one)
// is written under a temporary name and renamed into place; a character device or FIFO
// (/dev/null, a pipe) is written directly, since renaming over it would replace the device; a
// directory, block device or socket is an Error.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace fp8llm {

// "a regular file", "a directory", "a FIFO", "a character device", "a block device", "a socket",
// "a symbolic link" (from a stat mode).
std::string_view file_type_name(mode_t mode);

// Opens `path` for reading (O_RDONLY | O_CLOEXEC) without blocking on a FIFO or device, and fails
// unless it is a regular file, naming what it is instead. Returns the descriptor; `size`, when
// given, receives the file size.
int open_regular_file(const std::filesystem::path& path, uint64_t* size = nullptr);

// Fails unless `path` exists and is a regular file (or a link to one), naming what it is instead.
void require_regular_file(const std::filesystem::path& path);

// Reads a whole (small) regular file, e.g. config.json. Errors name the path.
std::string read_text_file(const std::filesystem::path& path);

// A file being written at `path` by the rules above. Until commit() the bytes go to stream(); the
// destructor removes an uncommitted temporary file.
class OutputFile {
 public:
  explicit OutputFile(std::filesystem::path path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::FILE* stream() const { return out_; }
  // Where the bytes go before commit(): the temporary file, or the path itself when direct.
  const std::filesystem::path& writing_to() const { return direct_ ? path_ : tmp_; }
  // True when `path` is a character device or FIFO, written in place.
  bool direct() const { return direct_; }
  // Flushes; a regular file is fsynced and renamed into place. Errors name the path.
  void commit();

 private:
  std::filesystem::path path_;  // the destination (a link resolved to its target)
  std::filesystem::path tmp_;   // empty when direct
  std::FILE* out_ = nullptr;
  bool direct_ = false;
  bool committed_ = false;
};

// Writes `path` by the rules above: complete or not at all. If `write` throws, the temporary file
// is removed and the exception propagates.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::FILE*)>& write);
void write_text_file_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace fp8llm
