#include "backend/cuda/kernels/attention_kernels.h"

#include <cstdlib>

#include "core/error.h"

namespace fp8llm::cuda {
namespace {

constexpr std::string_view kVariable = "FP8LLM_ATTENTION_KERNELS";

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

AttentionKernels parse_attention_kernels(std::string_view text) {
  AttentionKernels k;
  text = trim(text);
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view part = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const size_t eq = part.find('=');
    const std::string_view name = trim(part.substr(0, eq));
    const std::string_view value = eq == std::string_view::npos ? "" : trim(part.substr(eq + 1));
    if (name == "decode" && value == "measured") {
      k.decode = DecodeKvLoads::Measured;
    } else if (name == "decode" && value == "pipelined") {
      k.decode = DecodeKvLoads::Pipelined;
    } else if (name == "prefill" && value == "wmma") {
      k.prefill = PrefillKernel::Wmma;
    } else if (name == "prefill" && value == "mma") {
      k.prefill = PrefillKernel::Mma;
    } else {
      fail(
          "{}: cannot read '{}' (expected decode=measured|pipelined or prefill=wmma|mma, "
          "separated by commas)",
          kVariable, part);
    }
  }
  return k;
}

AttentionKernels attention_kernels_from_env() {
  const char* text = std::getenv(std::string(kVariable).c_str());
  return parse_attention_kernels(text == nullptr ? "" : text);
}

std::string to_string(const AttentionKernels& k) {
  std::string s = k.decode == DecodeKvLoads::Pipelined ? "decode=pipelined" : "decode=measured";
  s += k.prefill == PrefillKernel::Mma ? ",prefill=mma" : ",prefill=wmma";
  return s;
}

}  // namespace fp8llm::cuda
