// The Engine's LoRA methods for engines that have none (the engine over a device overrides them).
#include "core/error.h"
#include "fp8llm/engine.h"

namespace fp8llm {

void Engine::add_lora(const std::string& name, const std::filesystem::path&) {
  fail("lora {}: this engine does not run adapters", name);
}
void Engine::add_lora(const std::string& name, const std::string&,
                      const std::vector<WeightTensor>&) {
  fail("lora {}: this engine does not run adapters", name);
}
void Engine::replace_lora(const std::string& name, const std::vector<WeightTensor>&) {
  fail("lora {}: this engine does not run adapters", name);
}
void Engine::remove_lora(const std::string& name) {
  fail("lora {}: this engine does not run adapters", name);
}
std::vector<std::string> Engine::lora_names() const {
  return {};
}

}  // namespace fp8llm
