// Helpers shared by the weight-update tests (CPU and CUDA): new values for a fixture checkpoint,
// fused projections, and a copy of the fixture model holding them, so that an update can be
// compared with a fresh load of the same weights.
#pragma once

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "formats/safetensors.h"
#include "fp8llm/engine.h"
#include "state_dict_expect.h"
#include "test_util.h"

namespace fp8llm::test {

inline WeightTensor tensor_of(const std::string& name, const HostTensor& t) {
  return {name, std::string(dtype_name(t.dtype)), t.shape, t.bytes.data()};
}

// The checkpoint's tensors changed enough to change the model's logits everywhere: each value
// scaled and shifted by amounts that depend on the tensor and the element, rounded to BF16.
inline TensorMap modified(const TensorMap& checkpoint) {
  TensorMap out;
  int salt = 0;
  for (const auto& [name, t] : checkpoint) {
    HostTensor m(DType::BF16, t.shape);
    std::vector<float> v(static_cast<size_t>(t.numel()));
    to_f32(t.dtype, t.bytes.data(), v.data(), v.size());
    ++salt;
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = v[i] * (1.0f + 0.03125f * static_cast<float>((i + salt) % 7)) +
             0.001f * static_cast<float>(static_cast<int>((i * 13 + salt) % 5) - 2);
    from_f32(DType::BF16, v.data(), m.bytes.data(), v.size());
    out.emplace(name, std::move(m));
  }
  return out;
}

inline HostTensor as_f32(const HostTensor& t) {
  HostTensor f(DType::F32, t.shape);
  to_f32(t.dtype, t.bytes.data(), f.as<float>(), static_cast<size_t>(t.numel()));
  return f;
}

// Rows of several tensors stacked into one (a fused projection).
inline HostTensor stacked(const std::vector<const HostTensor*>& parts) {
  Shape shape = parts[0]->shape;
  for (size_t i = 1; i < parts.size(); ++i) shape[0] += parts[i]->shape[0];
  HostTensor out(parts[0]->dtype, shape);
  size_t at = 0;
  for (const HostTensor* p : parts) {
    std::memcpy(out.bytes.data() + at, p->bytes.data(), p->bytes.size());
    at += p->bytes.size();
  }
  return out;
}

// A copy of tiny-llama whose weights are `tensors`.
inline void write_model(const TempDir& dir, const TensorMap& tensors) {
  copy_dir(data_path("tiny-llama"), dir.path());
  std::vector<std::pair<std::string, TensorView>> views;
  for (const auto& [name, t] : tensors) views.emplace_back(name, t.view());
  write_safetensors(dir / "model.safetensors", views);
}

}  // namespace fp8llm::test
