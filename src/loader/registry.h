// The registry of pre-quantized copies: a JSON file mapping a BF16 checkpoint directory (its
// absolute path, plus the name and SHA-256 of its config.json, so that a changed checkpoint no
// longer matches) to FP8 copies of it, one per mode:
//
//   {"version": 1, "models": [{"source": "/abs/llama", "config": "config.json",
//     "config_sha256": "<hex>", "copies": {"fp8-block": "/abs/llama-fp8-block"}}]}
//
// Its path: `--registry`, else $FP8LLM_REGISTRY, else $XDG_CONFIG_HOME/fp8llm/registry.json
// (XDG_CONFIG_HOME defaulting to ~/.config). A missing file is an empty registry.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace fp8llm {

std::filesystem::path default_registry_path();

// The registered copy of `source_dir` for `mode` ("fp8-row" | "fp8-block"), if one is registered
// for this exact config.json and still exists.
std::optional<std::filesystem::path> find_registered_copy(const std::filesystem::path& registry,
                                                          const std::filesystem::path& source_dir,
                                                          const std::string& mode);

// Records `copy_dir` as the `mode` copy of `source_dir` (rewriting the file atomically).
void register_copy(const std::filesystem::path& registry, const std::filesystem::path& source_dir,
                   const std::string& mode, const std::filesystem::path& copy_dir);

// SHA-256 of <dir>/config.json.
std::string config_sha256(const std::filesystem::path& model_dir);

}  // namespace fp8llm
