// Checks shared by the state-dict and export tests: a reference checkpoint read into tensors by
// name (as stored, or dequantized here, independently of the engine's code), and comparisons of
// state-dict tensors and written checkpoints against it, byte for byte.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "fp8llm/engine.h"
#include "test_util.h"

namespace fp8llm::test {

// name -> tensor; the reference a state dict or a written checkpoint must equal.
using TensorMap = std::map<std::string, HostTensor>;

inline HostTensor copy_of(const TensorView& v) {
  HostTensor t(v.dtype, v.shape);
  std::memcpy(t.bytes.data(), v.data, v.nbytes);
  return t;
}

// Every tensor of a safetensors file or model directory, as stored.
inline TensorMap tensors_of_file(const std::filesystem::path& file) {
  TensorMap out;
  const auto f = SafetensorsFile::open(file);
  for (const auto& t : f->tensors()) out.emplace(t.name, copy_of(f->view(t)));
  return out;
}
inline TensorMap tensors_of_dir(const std::filesystem::path& dir) {
  TensorMap out;
  const Checkpoint c = Checkpoint::open(dir);
  for (const auto& t : c.tensors()) out.emplace(t.info->name, copy_of(c.view(t.info->name)));
  return out;
}

// `stored` with every F8_E4M3 weight replaced by bf16_rne(float32(code) * scale) and its scale
// (`<w>_scale` [N, 1] per row, or `<w>_scale_inv` [ceil(N/128), ceil(K/128)] per 128x128 tile)
// dropped.
inline TensorMap dequantized(const TensorMap& stored) {
  TensorMap out;
  for (const auto& [name, t] : stored) {
    if (name.ends_with("_scale") || name.ends_with("_scale_inv")) continue;
    if (t.dtype != DType::F8_E4M3) {
      out.emplace(name, t);
      continue;
    }
    const bool row = stored.count(name + "_scale") > 0;
    const HostTensor& scale = stored.at(name + (row ? "_scale" : "_scale_inv"));
    const int64_t n = t.shape[0], k = t.shape[1];
    HostTensor deq(DType::BF16, t.shape);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < k; ++c) {
        const float s =
            row ? scale.as<float>()[r] : scale.as<float>()[(r / 128) * scale.shape[1] + c / 128];
        const float x = e4m3_to_f32(t.as<uint8_t>()[r * k + c]) * s;
        deq.as<uint16_t>()[r * k + c] = f32_to_bf16(x);
      }
    }
    out.emplace(name, std::move(deq));
  }
  return out;
}

inline void expect_same_tensor(const std::string& name, const HostTensor& got,
                               const HostTensor& want) {
  EXPECT_EQ(got.dtype, want.dtype) << name;
  EXPECT_EQ(got.shape, want.shape) << name;
  ASSERT_EQ(got.bytes.size(), want.bytes.size()) << name;
  EXPECT_EQ(std::memcmp(got.bytes.data(), want.bytes.data(), want.bytes.size()), 0)
      << name << " differs";
}

// The same names, and every tensor equal byte for byte.
inline void expect_same_tensors(const TensorMap& got, const TensorMap& want) {
  std::vector<std::string> got_names, want_names;
  for (const auto& [name, t] : got) got_names.push_back(name);
  for (const auto& [name, t] : want) want_names.push_back(name);
  EXPECT_EQ(got_names, want_names);
  for (const auto& [name, t] : want) {
    const auto it = got.find(name);
    if (it != got.end()) expect_same_tensor(name, it->second, t);
  }
}

// The engine's whole state dict of `form`, read one tensor at a time by name.
inline TensorMap state_dict_of(const Engine& engine, StateDictForm form) {
  TensorMap out;
  for (const StateDictEntry& e : engine.state_dict(form)) {
    const StateDictTensor t = engine.state_dict_tensor(e.name, form);
    EXPECT_EQ(t.entry.name, e.name);
    EXPECT_EQ(t.entry.nbytes, e.nbytes) << e.name;
    const std::optional<DType> dtype = dtype_from_name(e.dtype);
    EXPECT_TRUE(dtype.has_value()) << e.name << ": " << e.dtype;
    HostTensor h(dtype.value_or(DType::U8), e.shape);
    EXPECT_EQ(h.bytes.size(), t.bytes.size()) << e.name;
    std::memcpy(h.bytes.data(), t.bytes.data(), std::min(h.bytes.size(), t.bytes.size()));
    out.emplace(e.name, std::move(h));
  }
  return out;
}

inline std::string expected_file(const std::string& model, const std::string& quantization) {
  return model + (quantization == "fp8-row" ? "/expected_fp8_row.safetensors"
                                            : "/expected_fp8_block.safetensors");
}

}  // namespace fp8llm::test
