// Whole-file reads and crash-safe writes.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace fp8llm {

// Reads a whole (small) file, e.g. config.json. Errors name the path.
std::string read_text_file(const std::filesystem::path& path);

// Writes `path` so that it either appears complete or not at all: the writer fills a temporary
// file next to it (same directory, so rename is atomic), which is fsynced and renamed into place.
// If `write` throws, the temporary file is removed and the exception propagates.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::FILE*)>& write);
void write_text_file_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace fp8llm
