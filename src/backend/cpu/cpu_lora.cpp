#include "backend/cpu/cpu_lora.h"

#include "backend/cpu/linear.h"
#include "core/dtype.h"
#include "core/error.h"

namespace fp8llm::cpu {

void CpuLora::reserve(int slots, int64_t max_rank) {
  FP8LLM_CHECK(slots >= 0 && max_rank > 0, "lora: {} slots of rank {}", slots, max_rank);
  slots_.assign(static_cast<size_t>(slots), Slot{});
  max_rank_ = max_rank;
}

void CpuLora::set(int slot, const LoraAdapter* adapter) {
  FP8LLM_CHECK(slot >= 0 && slot < static_cast<int>(slots_.size()), "lora: slot {} of {}", slot,
               slots_.size());
  Slot& s = slots_[static_cast<size_t>(slot)];
  s = Slot{};
  if (adapter == nullptr) return;
  FP8LLM_CHECK(adapter->rank <= max_rank_, "lora: rank {} exceeds the engine's --max-lora-rank {}",
               adapter->rank, max_rank_);
  s.used = true;
  s.rank = adapter->rank;
  s.scale = adapter->scale;
  for (const LoraModule& m : adapter->modules) {
    Factors& f = s.modules[{m.layer, m.kind}];
    f.a.resize(m.a.size());
    f.b.resize(m.b.size());
    for (size_t i = 0; i < m.a.size(); ++i) f.a[i] = bf16_to_f32(m.a[i]);
    for (size_t i = 0; i < m.b.size(); ++i) f.b[i] = bf16_to_f32(m.b[i]);
  }
}

void CpuLora::apply(const float* in, int64_t cols_in, int64_t layer, LinearKind kind,
                    const BatchView& batch, float* out, int64_t cols_out) const {
  for (size_t slot = 0; slot < slots_.size(); ++slot) {
    const Slot& s = slots_[slot];
    if (!s.used) continue;
    const auto it = s.modules.find({layer, kind});
    if (it == s.modules.end()) continue;
    std::vector<int64_t> rows;
    for (int64_t t = 0; t < batch.num_tokens; ++t)
      if (batch.token_lora[t] == static_cast<int32_t>(slot)) rows.push_back(t);
    if (rows.empty()) continue;
    const auto m = static_cast<int64_t>(rows.size());
    std::vector<float> x(static_cast<size_t>(m * cols_in));
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(in + rows[static_cast<size_t>(i)] * cols_in, cols_in, x.begin() + i * cols_in);
    std::vector<float> u(static_cast<size_t>(m * s.rank));
    std::vector<float> d(static_cast<size_t>(m * cols_out));
    linear_f32(x.data(), m, cols_in, it->second.a.data(), s.rank, nullptr, u.data());
    linear_f32(u.data(), m, s.rank, it->second.b.data(), cols_out, nullptr, d.data());
    for (int64_t i = 0; i < m; ++i) {
      float* y = out + rows[static_cast<size_t>(i)] * cols_out;
      for (int64_t n = 0; n < cols_out; ++n)
        y[n] += s.scale * d[static_cast<size_t>(i * cols_out + n)];
    }
  }
}

}  // namespace fp8llm::cpu
