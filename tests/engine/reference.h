// Reads a fixture model's reference.json and reference_logits.safetensors.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "test_util.h"

namespace fp8llm::test {

struct Reference {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int32_t> greedy_continuation_of_prompt_1;
  std::shared_ptr<SafetensorsFile> logits;

  static Reference load(const std::string& model) {
    Reference r;
    std::ifstream in(data_path(model + "/reference.json"));
    const nlohmann::json j = nlohmann::json::parse(in);
    r.prompts = j.at("prompts").get<std::vector<std::vector<int32_t>>>();
    r.greedy_continuation_of_prompt_1 =
        j.at("greedy_continuation_of_prompt_1").get<std::vector<int32_t>>();
    r.logits = SafetensorsFile::open(data_path(model + "/reference_logits.safetensors"));
    return r;
  }

  // Logits "<kind>.p<i>" as fp32 ([len, vocab] flattened); kind: fp32, bf16, fp8_row, fp8_block.
  std::vector<float> expected(const std::string& kind, size_t prompt) const {
    const TensorView v = logits->view(kind + ".p" + std::to_string(prompt));
    std::vector<float> out(static_cast<size_t>(v.numel()));
    to_f32(v.dtype, v.data, out.data(), out.size());
    return out;
  }
};

}  // namespace fp8llm::test
