// ChatTemplate: the fixture models' templates reproduce transformers' apply_chat_template output,
// and loading a template from a model directory handles every form tokenizer_config.json uses.
#include "text/chat_template.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>

#include "core/error.h"
#include "core/file_util.h"
#include "test_util.h"

namespace fp8llm {
namespace {

using Json = nlohmann::ordered_json;
using test::error_of;

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Every chat[] case of a fixture's tokenizer_reference.json (recorded from transformers)
// renders to exactly its text. Returns the number of cases checked.
int check_reference_chats(const std::string& model) {
  const auto dir = test::data_path(model);
  const ChatTemplate chat = ChatTemplate::from_tokenizer_config(dir);
  const Json reference = Json::parse(read_text_file(dir / "tokenizer_reference.json"));
  int checked = 0;
  for (const Json& c : reference.at("chat")) {
    SCOPED_TRACE(model + " case " + std::to_string(checked) + ": " + c.at("messages").dump());
    EXPECT_EQ(chat.render(c.at("messages"), c.at("add_generation_prompt").get<bool>(),
                          c.value("extra", Json(nullptr))),
              c.at("text").get<std::string>());
    ++checked;
  }
  return checked;
}

TEST(ChatTemplate, LlamaReferenceChats) {
  EXPECT_EQ(check_reference_chats("tiny-llama"), 8);
}

TEST(ChatTemplate, Qwen3ReferenceChats) {
  EXPECT_EQ(check_reference_chats("tiny-qwen3"), 8);
}

TEST(ChatTemplate, LlamaWithoutDateStringUsesTodayFromStrftimeNow) {
  const ChatTemplate chat = ChatTemplate::from_tokenizer_config(test::data_path("tiny-llama"));
  const std::string text = chat.render(Json::parse(R"([{"role": "user", "content": "Hi"}])"), true);
  // The template calls strftime_now("%d %b %Y").
  EXPECT_TRUE(std::regex_search(text, std::regex("Today Date: \\d\\d [A-Z][a-z][a-z] \\d{4}\n")))
      << text;
}

TEST(ChatTemplate, Qwen3EnableThinkingFalseAddsEmptyThinkBlock) {
  const ChatTemplate chat = ChatTemplate::from_tokenizer_config(test::data_path("tiny-qwen3"));
  const Json messages = Json::parse(R"([{"role": "user", "content": "Hi"}])");
  EXPECT_EQ(chat.render(messages, true, Json::parse(R"({"enable_thinking": false})")),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatTemplate, Qwen3ToolCallsAndResponses) {
  const ChatTemplate chat = ChatTemplate::from_tokenizer_config(test::data_path("tiny-qwen3"));
  const Json messages = Json::parse(R"([
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}}]},
    {"role": "tool", "content": "{\"temp\": 21}"},
    {"role": "tool", "content": "sunny"},
    {"role": "assistant", "content": "<think>\nIt is warm.\n</think>\n\nIt is 21 C and sunny."}
  ])");
  EXPECT_EQ(
      chat.render(messages, false),
      "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
      "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
      "{\"city\": \"Paris\", \"unit\": \"C\"}}\n</tool_call><|im_end|>\n"
      "<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response>\n"
      "<tool_response>\nsunny\n</tool_response><|im_end|>\n"
      "<|im_start|>assistant\n<think>\nIt is warm.\n</think>\n\nIt is 21 C and sunny.<|im_end|>\n");
}

TEST(ChatTemplate, LlamaToolCallAndIpythonMessages) {
  const ChatTemplate chat = ChatTemplate::from_tokenizer_config(test::data_path("tiny-llama"));
  const Json messages = Json::parse(R"([
    {"role": "user", "content": "Add 2 and 3"},
    {"role": "assistant", "tool_calls": [{"function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]},
    {"role": "ipython", "content": {"result": 5}}
  ])");
  EXPECT_EQ(chat.render(messages, false, Json::parse(R"({"date_string": "01 Jan 2025"})")),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAdd 2 and 3<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
            "{\"name\": \"add\", \"parameters\": {\"a\": 2, \"b\": 3}}<|eot_id|>"
            "<|start_header_id|>ipython<|end_header_id|>\n\n{\"result\": 5}<|eot_id|>");
}

TEST(ChatTemplate, LlamaRaiseExceptionNamesTheTemplateLine) {
  const ChatTemplate chat = ChatTemplate::from_tokenizer_config(test::data_path("tiny-llama"));
  const Json messages = Json::parse(R"([
    {"role": "assistant", "tool_calls": [{"function": {"name": "a", "arguments": {}}},
                                         {"function": {"name": "b", "arguments": {}}}]}
  ])");
  const std::string error = error_of([&] { chat.render(messages, false); });
  EXPECT_EQ(error,
            test::data_path("tiny-llama/tokenizer_config.json").string() +
                ": chat template line 72: This model only supports single tool-calls at once!");
}

TEST(ChatTemplate, AcceptsUnorderedJson) {
  // nlohmann::json (keys sorted) converts implicitly; only dict key order can differ.
  const ChatTemplate chat("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}");
  const nlohmann::json messages = nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(chat.render(messages, false), "user:hi;");
}

TEST(ChatTemplate, SpecialTokensAreVariables) {
  const ChatTemplate chat(
      "{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}|"
      "{{ additional_special_tokens | join(',') }}",
      Json::parse(R"({"bos_token": "<s>", "eos_token": {"content": "</s>", "lstrip": false},
                                          "pad_token": null, "additional_special_tokens": ["<a>", {"content": "<b>"}]})"));
  EXPECT_EQ(chat.render(Json::array(), false), "<s>|</s>|False|<a>,<b>");
}

TEST(ChatTemplate, StandardVariables) {
  const ChatTemplate chat(
      "{{ messages | length }} {{ add_generation_prompt }} {{ tools }} {{ documents }} "
      "{{ bos_token is defined }} {{ x }}");
  EXPECT_EQ(chat.render(Json::parse(R"([{"role": "user", "content": "a"}])"), true,
                        Json::parse(R"({"x": [1, "b"]})")),
            "1 True None None False [1, 'b']");
}

TEST(ChatTemplate, ExtraContextOverridesStandardVariables) {
  const ChatTemplate chat("{{ tools | length }}{{ add_generation_prompt }}");
  EXPECT_EQ(
      chat.render(Json::array(), false,
                  Json::parse(R"({"tools": [{"name": "f"}], "add_generation_prompt": "yes"})")),
      "1yes");
}

TEST(ChatTemplate, StrftimeNowFormatsLocalTime) {
  const ChatTemplate chat(
      "{{ strftime_now('%Y') }}|{{ strftime_now('') }}|{{ strftime_now('x%%y') }}");
  const std::string text = chat.render(Json::array(), false);
  EXPECT_TRUE(std::regex_match(text, std::regex("\\d{4}\\|\\|x%y"))) << text;
}

TEST(ChatTemplate, StrftimeNowRejectsBadArguments) {
  const ChatTemplate chat("\n{{ strftime_now(3) }}");
  EXPECT_EQ(error_of([&] { chat.render(Json::array(), false); }),
            "chat template line 2: strftime_now() takes one format string");
}

TEST(ChatTemplate, RaiseExceptionWithoutArguments) {
  const ChatTemplate chat("{{ raise_exception() }}");
  EXPECT_EQ(error_of([&] { chat.render(Json::array(), false); }),
            "chat template line 1: raise_exception() called");
}

TEST(ChatTemplate, MessagesMustBeAnArray) {
  const ChatTemplate chat("{{ messages }}");
  EXPECT_EQ(error_of([&] { chat.render(Json::object(), false); }),
            "chat messages: expected a JSON array of messages, got object");
}

TEST(ChatTemplate, ExtraContextMustBeAnObject) {
  const ChatTemplate chat("{{ messages }}");
  EXPECT_EQ(error_of([&] { chat.render(Json::array(), false, Json::array()); }),
            "chat template variables: expected a JSON object, got array");
}

TEST(ChatTemplate, SpecialTokenOfWrongTypeIsRejected) {
  EXPECT_EQ(error_of([] { ChatTemplate("x", Json::parse(R"({"bos_token": 3})")); }),
            "chat template: bos_token: must be a string or an object with a string \"content\"");
}

TEST(ChatTemplate, SyntaxErrorNamesTheLine) {
  EXPECT_EQ(
      error_of([] { ChatTemplate("a\n{% include 'x' %}"); }),
      "chat template line 2: unsupported statement 'include' (supported: if, for, set, macro, "
      "filter, raw, break, continue, generation)");
}

TEST(ChatTemplateConfig, ListOfNamedTemplatesUsesDefault) {
  test::TempDir dir;
  write(dir / "tokenizer_config.json",
        R"({"bos_token": "<s>", "chat_template": [{"name": "tool_use", "template": "T"},
            {"name": "default", "template": "D{{ bos_token }}"}]})");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(dir.path()).render(Json::array(), false), "D<s>");
}

TEST(ChatTemplateConfig, ListWithoutDefaultIsAnError) {
  test::TempDir dir;
  write(
      dir / "tokenizer_config.json",
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "rag", "template": "R"}]})");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_tokenizer_config(dir.path()); }),
            (dir / "tokenizer_config.json").string() +
                ": chat_template lists no template named \"default\" (it has: tool_use, rag)");
}

TEST(ChatTemplateConfig, MalformedTemplateListIsAnError) {
  test::TempDir dir;
  write(dir / "tokenizer_config.json", R"({"chat_template": [{"name": "default"}]})");
  EXPECT_EQ(
      error_of([&] { ChatTemplate::from_tokenizer_config(dir.path()); }),
      (dir / "tokenizer_config.json").string() +
          ": each entry of the chat_template list must have string \"name\" and \"template\"");
  write(dir / "tokenizer_config.json", R"({"chat_template": 7})");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_tokenizer_config(dir.path()); }),
            (dir / "tokenizer_config.json").string() +
                ": chat_template must be a string or a list of named templates");
}

TEST(ChatTemplateConfig, ChatTemplateJinjaFileTakesPrecedence) {
  test::TempDir dir;
  write(dir / "tokenizer_config.json", R"({"eos_token": "</s>", "chat_template": "config"})");
  write(dir / "chat_template.jinja", "file{{ eos_token }}\n");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(dir.path()).render(Json::array(), false),
            "file</s>");
}

TEST(ChatTemplateConfig, ErrorsInAJinjaFileNameIt) {
  test::TempDir dir;
  write(dir / "chat_template.jinja", "{% for x in y %}");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_tokenizer_config(dir.path()); }),
            (dir / "chat_template.jinja").string() +
                ": chat template line 1: 'for' block is never closed (expected 'endfor')");
}

TEST(ChatTemplateConfig, MissingTemplateIsAnError) {
  test::TempDir dir;
  write(dir / "tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_tokenizer_config(dir.path()); }),
            (dir / "tokenizer_config.json").string() +
                ": no chat_template (and no chat_template.jinja next to it): the model has no chat "
                "format");
}

TEST(ChatTemplateConfig, InvalidJsonIsAnError) {
  test::TempDir dir;
  write(dir / "tokenizer_config.json", R"({"chat_template": )");
  const std::string error = error_of([&] { ChatTemplate::from_tokenizer_config(dir.path()); });
  EXPECT_EQ(error.rfind((dir / "tokenizer_config.json").string() + ": invalid JSON: ", 0), 0u)
      << error;
}

TEST(ChatTemplateConfig, BadSpecialTokenNamesTheConfigFile) {
  test::TempDir dir;
  write(dir / "tokenizer_config.json", R"({"eos_token": ["x"], "chat_template": "x"})");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_tokenizer_config(dir.path()); }),
            (dir / "tokenizer_config.json").string() +
                ": eos_token: must be a string or an object with a string \"content\"");
}

}  // namespace
}  // namespace fp8llm
