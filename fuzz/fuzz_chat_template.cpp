// Feeds arbitrary bytes to the chat template engine as a template's source, and renders what
// parses with a small conversation, as the CLI does. Only fp8llm::Error may be thrown: a hostile
// template must fail within the render's limits (text/jinja/limits.h), never crash, hang or
// exhaust memory.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fp8llm;
  static const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi! \u00e9\u00e8 <b>"},
    {"role": "assistant", "content": "Hello.", "tool_calls": [
      {"type": "function", "function": {"name": "f", "arguments": {"x": [1, 2.5, null, true]}}}]},
    {"role": "tool", "content": {"result": "ok"}},
    {"role": "user", "content": [{"type": "text", "text": "and?"}]}
  ])");
  static const nlohmann::ordered_json special = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
  static const nlohmann::ordered_json variables = {{"enable_thinking", false},
                                                   {"date_string", "26 Jul 2024"}};
  const std::string source(reinterpret_cast<const char*>(data), size);
  try {
    const ChatTemplate t(source, special, "fuzz");
    t.render(messages, true, variables);
    t.render(nlohmann::ordered_json::array(), false);
  } catch (const Error&) {
  }
  return 0;
}
