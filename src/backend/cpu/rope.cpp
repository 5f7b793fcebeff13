#include "backend/cpu/rope.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/error.h"
#include "core/thread_pool.h"

namespace fp8llm::cpu {

void apply_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                std::span<const int64_t> positions, const RopeTable& table) {
  if (head_dim != table.head_dim())
    throw std::invalid_argument("apply_rope: head_dim differs from the RopeTable's");
  if (static_cast<int64_t>(positions.size()) != tokens)
    throw std::invalid_argument("apply_rope: one position per token is needed");
  const int64_t half = head_dim / 2;
  const size_t row = static_cast<size_t>(heads * head_dim);
  const size_t grain = std::max<size_t>(1, 16384 / std::max<size_t>(row, 1));
  parallel_for(static_cast<size_t>(tokens), grain, [&](size_t begin, size_t end) {
    std::vector<float> cos(static_cast<size_t>(half)), sin(static_cast<size_t>(half));
    for (size_t t = begin; t < end; ++t) {
      if (positions[t] < 0) throw std::invalid_argument("apply_rope: negative position");
      table.cos_sin(positions[t], cos.data(), sin.data());
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + t * row + static_cast<size_t>(h * head_dim);
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          // q * cos + rotate_half(q) * sin, rotate_half(q) = (-b, a); each product rounded.
          const float a_cos = a * cos[i], b_sin = b * sin[i];
          const float b_cos = b * cos[i], a_sin = a * sin[i];
          v[i] = a_cos - b_sin;
          v[i + half] = b_cos + a_sin;
        }
      }
    }
  });
}

}  // namespace fp8llm::cpu
