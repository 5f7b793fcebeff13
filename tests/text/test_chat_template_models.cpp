// Real chat templates of models the engine serves, rendered as transformers renders them. The
// template texts are those the models ship in tokenizer_config.json; the expected prompts follow
// from jinja2's semantics (and were confirmed with jinja2 3.1 under transformers' settings).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "core/error.h"
#include "text/chat_template.h"

namespace fp8llm {
namespace {

using Json = nlohmann::ordered_json;

// Mistral-7B-Instruct-v0.3 (with tool calling): the system message goes into the last user turn,
// tools are listed before the last user message.
constexpr const char* kMistralV03 = R"TPL({%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
)TPL";

// Mistral-Nemo-Instruct-2407: the v0.3 template without spaces after [INST] and friends.
constexpr const char* kMistralNemo = R"TPL({%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS][" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST]" + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST]" + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif (message.tool_calls is defined and message.tool_calls is not none) %}
        {{- "[TOOL_CALLS][" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- message["content"] + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS]{"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
)TPL";

// Mistral-7B-Instruct-v0.1/v0.2: strict user/assistant alternation, no system role.
constexpr const char* kMistralV01 =
    R"TPL({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})TPL";

// Qwen2.5-Instruct: ChatML with a default system prompt and <tool_call> blocks.
constexpr const char* kQwen25 = R"TPL({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)TPL";

const char* const kMistralTokens =
    R"({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})";
const char* const kQwenTokens =
    R"({"bos_token": null, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})";

// One function tool, as an OpenAI-style request passes it.
const char* const kWeatherTool = R"([{"type": "function", "function": {"name": "get_weather",
  "description": "Get the weather", "parameters": {"type": "object",
  "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])";

std::string render(const char* source, const char* tokens, const std::string& messages,
                   bool add_generation_prompt, const char* tools = nullptr) {
  const ChatTemplate chat(source, Json::parse(tokens));
  Json extra = Json::object();
  if (tools) extra["tools"] = Json::parse(tools);
  return chat.render(Json::parse(messages), add_generation_prompt, extra);
}

// The message of the fp8llm::Error that rendering throws ("" if none).
std::string render_error(const char* source, const char* tokens, const std::string& messages) {
  try {
    render(source, tokens, messages, false);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplateModels, MistralV03Conversation) {
  const std::string messages =
      R"([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": " Hello! "}, {"role": "user", "content": "How are you?"}])";
  EXPECT_EQ(render(kMistralV03, kMistralTokens, messages, true),
            "<s>[INST] Hi[/INST] Hello!</s>[INST] You are terse.\n\nHow are you?[/INST]");
}

TEST(ChatTemplateModels, MistralV03Tools) {
  const std::string messages =
      R"([{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "tool_calls": [{"id": "abc123def", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "tool_call_id": "abc123def", "name": "get_weather", "content": "21 C"}, {"role": "assistant", "content": "It is 21 C."}, {"role": "user", "content": "Thanks"}])";
  EXPECT_EQ(
      render(kMistralV03, kMistralTokens, messages, false, kWeatherTool),
      "<s>[INST] Weather in Paris?[/INST][TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": "
      "{\"city\": \"Paris\"}, \"id\": \"abc123def\"}]</s>[TOOL_RESULTS] {\"content\": 21 C, "
      "\"call_id\": \"abc123def\"}[/TOOL_RESULTS] It is 21 C.</s>[AVAILABLE_TOOLS] [{\"type\": "
      "\"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the "
      "weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": "
      "\"string\"}}, \"required\": [\"city\"]}}}][/AVAILABLE_TOOLS][INST] Thanks[/INST]");
}

TEST(ChatTemplateModels, MistralV03NotAlternating) {
  const std::string messages =
      R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])";
  EXPECT_EQ(render_error(kMistralV03, kMistralTokens, messages),
            "chat template line 18: After the optional system message, conversation roles must "
            "alternate user/assistant/user/assistant/...");
}

TEST(ChatTemplateModels, MistralV03BadToolCallId) {
  const std::string messages =
      R"([{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "f", "arguments": {}}}]}])";
  EXPECT_EQ(render_error(kMistralV03, kMistralTokens, messages),
            "chat template line 62: Tool call IDs should be alphanumeric strings with length 9!");
}

TEST(ChatTemplateModels, MistralV03SystemInTheMiddle) {
  const std::string messages =
      R"([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])";
  EXPECT_EQ(render_error(kMistralV03, kMistralTokens, messages),
            "chat template line 85: Only user and assistant roles are supported, with the "
            "exception of an initial optional system message!");
}

TEST(ChatTemplateModels, MistralNemoConversation) {
  const std::string messages =
      R"([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "How are you?"}])";
  EXPECT_EQ(render(kMistralNemo, kMistralTokens, messages, true),
            "<s>[INST]Hi[/INST]Hello!</s>[INST]You are terse.\n\nHow are you?[/INST]");
}

TEST(ChatTemplateModels, MistralNemoTools) {
  const std::string messages =
      R"([{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "tool_calls": [{"id": "abc123def", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "tool_call_id": "abc123def", "content": "21 C"}])";
  EXPECT_EQ(render(kMistralNemo, kMistralTokens, messages, false, kWeatherTool),
            "<s>[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": {\"name\": "
            "\"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": "
            "\"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": "
            "[\"city\"]}}}][/AVAILABLE_TOOLS][INST]Weather in Paris?[/INST][TOOL_CALLS][{\"name\": "
            "\"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": "
            "\"abc123def\"}]</s>[TOOL_RESULTS]{\"content\": 21 C, \"call_id\": "
            "\"abc123def\"}[/TOOL_RESULTS]");
}

TEST(ChatTemplateModels, MistralV01Conversation) {
  const std::string messages =
      R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}])";
  EXPECT_EQ(render(kMistralV01, kMistralTokens, messages, true),
            "<s>[INST] Hi [/INST]Hello!</s>[INST] Bye [/INST]");
}

TEST(ChatTemplateModels, MistralV01SystemRejected) {
  const std::string messages =
      R"([{"role": "system", "content": "s"}, {"role": "user", "content": "Hi"}])";
  EXPECT_EQ(
      render_error(kMistralV01, kMistralTokens, messages),
      "chat template line 1: Conversation roles must alternate user/assistant/user/assistant/...");
}

TEST(ChatTemplateModels, Qwen25DefaultSystemPrompt) {
  const std::string messages = R"([{"role": "user", "content": "Hi"}])";
  EXPECT_EQ(render(kQwen25, kQwenTokens, messages, true),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateModels, Qwen25SystemAndTurns) {
  const std::string messages =
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}, {"role": "user", "content": "2+2?"}])";
  EXPECT_EQ(render(kQwen25, kQwenTokens, messages, true),
            "<|im_start|>system\nBe "
            "brief.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n2<|im_end|>"
            "\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateModels, Qwen25ToolsAndToolResponses) {
  const std::string messages =
      R"([{"role": "user", "content": "Weather in Paris and Rome?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}, {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]}, {"role": "tool", "name": "get_weather", "content": "21 C"}, {"role": "tool", "name": "get_weather", "content": "25 C"}, {"role": "assistant", "content": "Paris 21 C, Rome 25 C."}])";
  EXPECT_EQ(render(kQwen25, kQwenTokens, messages, true, kWeatherTool),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user "
            "query.\n\nYou are provided with function signatures within <tools></tools> XML "
            "tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
            "\"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", "
            "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": "
            "[\"city\"]}}}\n</tools>\n\nFor each function call, return a json object with function "
            "name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
            "<function-name>, \"arguments\": "
            "<args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris and "
            "Rome?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", "
            "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": "
            "\"get_weather\", \"arguments\": {\"city\": "
            "\"Rome\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n21 "
            "C\n</tool_response>\n<tool_response>\n25 "
            "C\n</tool_response><|im_end|>\n<|im_start|>assistant\nParis 21 C, Rome 25 "
            "C.<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace fp8llm
