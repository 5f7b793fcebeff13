// A tensor handed to the engine by name, in host memory (LoRA factors, weights): the engine reads
// it during the call and keeps no reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fp8llm {

struct NamedTensor {
  std::string name;
  std::string dtype;  // "BF16", "F16" or "F32"
  std::vector<int64_t> shape;
  const void* data = nullptr;  // row-major, every element of `shape`
};

}  // namespace fp8llm
