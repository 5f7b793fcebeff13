// float8_e4m3fn decoding by table lookup: the 256 values as float32 (the two NaN codes decode to
// NaN). Decoding is on the hot path of every FP8 matrix product on the CPU.
#pragma once

#include <array>
#include <cstdint>

namespace fp8llm {

const std::array<float, 256>& e4m3_values();

}  // namespace fp8llm
