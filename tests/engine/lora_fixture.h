// Random LoRA adapters for tiny-llama in the PEFT layout (adapter_config.json +
// adapter_model.safetensors), and the same adapter merged into a copy of the checkpoint (F32
// projections W + scale * B · A, computed in double): the definition an adapter is checked against.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace fp8llm::test {

struct TinyAdapter {
  int rank = 8;
  double alpha = 16;
  bool rslora = false;
  std::vector<std::string> targets = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                      "gate_proj", "up_proj", "down_proj"};
  bool zero_b = false;  // PEFT's initialization: the adapter changes nothing
  float spread = 0.05f;
  uint32_t seed = 1;

  double scale() const { return rslora ? alpha / std::sqrt(double(rank)) : alpha / rank; }

  // (out, in) of a module of tiny-llama (hidden 256, 4 heads and 2 KV heads of 64, MLP 640).
  static std::pair<int64_t, int64_t> shape_of(const std::string& m) {
    if (m == "q_proj" || m == "o_proj") return {256, 256};
    if (m == "k_proj" || m == "v_proj") return {128, 256};
    if (m == "down_proj") return {256, 640};
    return {640, 256};  // gate_proj, up_proj
  }
  static std::string parent_of(const std::string& m) {
    return m == "gate_proj" || m == "up_proj" || m == "down_proj" ? "mlp" : "self_attn";
  }

  // Factors as bf16 bits by tensor name (PEFT naming).
  std::map<std::string, std::vector<uint16_t>> factors() const {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, spread);
    std::map<std::string, std::vector<uint16_t>> out;
    for (int l = 0; l < 2; ++l) {
      for (const std::string& m : targets) {
        const auto [o, i] = shape_of(m);
        const std::string base =
            "base_model.model.model.layers." + std::to_string(l) + "." + parent_of(m) + "." + m;
        std::vector<uint16_t>& a = out[base + ".lora_A.weight"];
        std::vector<uint16_t>& b = out[base + ".lora_B.weight"];
        for (int64_t k = 0; k < rank * i; ++k) a.push_back(f32_to_bf16(n(rng)));
        for (int64_t k = 0; k < o * rank; ++k) b.push_back(zero_b ? 0 : f32_to_bf16(n(rng)));
      }
    }
    return out;
  }

  std::string config_json() const {
    return nlohmann::json{{"peft_type", "LORA"},       {"r", rank},
                          {"lora_alpha", alpha},       {"use_rslora", rslora},
                          {"target_modules", targets}, {"bias", "none"},
                          {"task_type", "CAUSAL_LM"}}
        .dump();
  }

  Shape shape_of_tensor(const std::string& name) const {
    const size_t proj = name.find("_proj");
    const size_t dot = name.rfind('.', proj);
    const std::string m = name.substr(dot + 1, proj + 5 - dot - 1);
    const auto [o, i] = shape_of(m);
    return name.find("lora_A") != std::string::npos ? Shape{rank, i} : Shape{o, rank};
  }

  void write(const std::filesystem::path& dir) const {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "adapter_config.json") << config_json();
    const auto f = factors();
    std::vector<std::pair<std::string, TensorView>> views;
    for (const auto& [name, bits] : f) {
      views.emplace_back(
          name, TensorView{DType::BF16, shape_of_tensor(name),
                           reinterpret_cast<const std::byte*>(bits.data()), bits.size() * 2});
    }
    write_safetensors(dir / "adapter_model.safetensors", views, {});
  }

  // tiny-llama with this adapter merged into its projections (F32 tensors), into `dir`.
  void write_merged(const std::filesystem::path& dir) const {
    copy_dir(data_path("tiny-llama"), dir);
    const auto src = SafetensorsFile::open(data_path("tiny-llama/model.safetensors"));
    const auto f = factors();
    std::vector<std::vector<float>> keep;
    std::vector<std::pair<std::string, TensorView>> views;
    for (const TensorInfo& info : src->tensors()) {
      TensorView v = src->view(info);
      const std::string key = "base_model.model." + info.name;
      const std::string stem = key.substr(0, key.size() - std::string(".weight").size());
      const auto a = f.find(stem + ".lora_A.weight");
      if (a != f.end()) {
        const auto& b = f.at(stem + ".lora_B.weight");
        const int64_t o = v.shape[0], i = v.shape[1];
        std::vector<float> w(static_cast<size_t>(o * i));
        to_f32(v.dtype, v.data, w.data(), w.size());
        for (int64_t r0 = 0; r0 < o; ++r0) {
          for (int64_t c = 0; c < i; ++c) {
            double d = 0;
            for (int r = 0; r < rank; ++r)
              d += double(bf16_to_f32(b[size_t(r0 * rank + r)])) *
                   bf16_to_f32(a->second[size_t(r * i + c)]);
            w[size_t(r0 * i + c)] = static_cast<float>(double(w[size_t(r0 * i + c)]) + scale() * d);
          }
        }
        keep.push_back(std::move(w));
        v = TensorView{DType::F32, v.shape, reinterpret_cast<const std::byte*>(keep.back().data()),
                       keep.back().size() * 4};
      }
      views.emplace_back(info.name, v);
    }
    std::filesystem::remove(dir / "model.safetensors");
    write_safetensors(dir / "model.safetensors", views, src->metadata());
  }
};

}  // namespace fp8llm::test
