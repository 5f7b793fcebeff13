// Small formatting helpers shared by the subcommands' reports.
#pragma once

#include <cstdint>
#include <string>

namespace fp8llm::cli {

// 1536 -> "1.5 KiB"
std::string human_bytes(uint64_t bytes);

}  // namespace fp8llm::cli
