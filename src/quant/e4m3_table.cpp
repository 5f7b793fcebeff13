#include "quant/e4m3_table.h"

#include "core/dtype.h"

namespace fp8llm {

const std::array<float, 256>& e4m3_values() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int code = 0; code < 256; ++code) t[code] = e4m3_to_f32(static_cast<uint8_t>(code));
    return t;
  }();
  return table;
}

}  // namespace fp8llm
