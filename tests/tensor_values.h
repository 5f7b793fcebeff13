// A tensor of a safetensors file copied out as values of type T (the tests' reference logits,
// token ids and the like).
#pragma once

#include <cstring>
#include <vector>

#include "formats/safetensors.h"

namespace fp8llm::test {

template <typename T>
std::vector<T> tensor_values(const SafetensorsFile& f, const char* name) {
  const TensorView v = f.view(name);
  std::vector<T> out(v.nbytes / sizeof(T));
  std::memcpy(out.data(), v.data, v.nbytes);
  return out;
}

}  // namespace fp8llm::test
