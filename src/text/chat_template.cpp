#include "text/chat_template.h"

#include <ctime>
#include <utility>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"
#include "text/jinja/eval_error.h"

namespace fp8llm {
namespace {

// The special-token attributes transformers passes to every chat template.
constexpr const char* kSpecialTokenKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                             "pad_token", "cls_token", "mask_token"};

// datetime.now().strftime(format).
std::string strftime_now(const std::string& format) {
  if (format.empty()) return "";
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  for (size_t size = 128; size <= 65536; size *= 2) {
    std::string buf(size, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &local);
    if (n > 0) return buf.substr(0, n);
  }
  return "";  // a format that expands to nothing, e.g. "%p" in some locales
}

jinja::Value special_token_value(const nlohmann::ordered_json& token, const std::string& where) {
  if (token.is_string()) return jinja::Value(token.get<std::string>());
  if (token.is_object() && token.contains("content") && token["content"].is_string()) {
    return jinja::Value(token["content"].get<std::string>());
  }
  fail("{}: must be a string or an object with a string \"content\"", where);
}

jinja::Dict special_tokens_from(const nlohmann::ordered_json& config, const std::string& where) {
  jinja::Dict tokens;
  if (config.is_null()) return tokens;
  if (!config.is_object()) fail("{}: special tokens must be a JSON object", where);
  for (const char* key : kSpecialTokenKeys) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) continue;
    tokens.set(key, special_token_value(*it, where + ": " + key));
  }
  if (auto it = config.find("additional_special_tokens"); it != config.end() && !it->is_null()) {
    if (!it->is_array()) fail("{}: additional_special_tokens must be a list", where);
    std::vector<jinja::Value> list;
    for (const auto& t : *it)
      list.push_back(special_token_value(t, where + ": additional_special_tokens"));
    tokens.set("additional_special_tokens", jinja::Value::list(std::move(list)));
  }
  return tokens;
}

std::string template_from_config(const nlohmann::ordered_json& value, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_array())
    fail("{}: chat_template must be a string or a list of named templates", where);
  std::string names;
  for (const auto& entry : value) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
        !entry.contains("template") || !entry["template"].is_string()) {
      fail("{}: each entry of the chat_template list must have string \"name\" and \"template\"",
           where);
    }
    if (entry["name"] == "default") return entry["template"].get<std::string>();
    names += (names.empty() ? "" : ", ") + entry["name"].get<std::string>();
  }
  fail("{}: chat_template lists no template named \"default\" (it has: {})", where, names);
}

}  // namespace

ChatTemplate ChatTemplate::from_tokenizer_config(const std::filesystem::path& model_dir) {
  const std::filesystem::path config_path = model_dir / "tokenizer_config.json";
  const std::filesystem::path jinja_path = model_dir / "chat_template.jinja";
  nlohmann::ordered_json config;
  const bool has_config = std::filesystem::exists(config_path);
  if (has_config) {
    try {
      config = nlohmann::ordered_json::parse(read_text_file(config_path));
    } catch (const nlohmann::json::exception& e) {  // a syntax error, or a number out of range
      fail("{}: invalid JSON: {}", config_path.string(), e.what());
    }
    check_json_depth(config, config_path.string());
    if (!config.is_object()) fail("{}: expected a JSON object", config_path.string());
  }
  std::string source;
  std::string where;
  if (std::filesystem::exists(jinja_path)) {
    source = read_text_file(jinja_path);
    where = jinja_path.string();
  } else if (has_config && config.contains("chat_template") && !config["chat_template"].is_null()) {
    where = config_path.string();
    source = template_from_config(config["chat_template"], where);
  } else {
    fail(
        "{}: no chat_template (and no chat_template.jinja next to it): the model has no chat "
        "format",
        config_path.string());
  }
  nlohmann::ordered_json tokens = nlohmann::ordered_json::object();
  for (const char* key : kSpecialTokenKeys) {
    if (config.contains(key)) tokens[key] = config[key];
  }
  if (config.contains("additional_special_tokens")) {
    tokens["additional_special_tokens"] = config["additional_special_tokens"];
  }
  // Validate the tokens with the config file's name in the message.
  special_tokens_from(tokens, config_path.string());
  return ChatTemplate(std::move(source), std::move(tokens), where + ": chat template");
}

ChatTemplate::ChatTemplate(std::string source, nlohmann::ordered_json special_tokens,
                           std::string name)
    : source_(std::move(source)),
      template_(source_,
                jinja::TemplateOptions{name, /*trim_blocks=*/true, /*lstrip_blocks=*/true}),
      special_tokens_(special_tokens_from(special_tokens, name)) {}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra_context) const {
  if (!messages.is_array()) {
    fail("chat messages: expected a JSON array of messages, got {}", messages.type_name());
  }
  if (!extra_context.is_null() && !extra_context.is_object()) {
    fail("chat template variables: expected a JSON object, got {}", extra_context.type_name());
  }
  jinja::Dict vars;
  try {
    vars.set("messages", jinja::from_json(messages));
  } catch (const jinja::EvalError& e) {
    fail("chat messages: {}", e.what());
  }
  vars.set("tools", jinja::Value::none());
  vars.set("documents", jinja::Value::none());
  vars.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  for (const auto& [k, v] : special_tokens_.items()) vars.set(k, v);
  vars.set("raise_exception",
           jinja::Value::function("raise_exception", [](jinja::Args& args) -> jinja::Value {
             throw jinja::EvalError(args.positional.empty()
                                        ? std::string("raise_exception() called")
                                        : jinja::to_str(args.positional[0]));
           }));
  vars.set("strftime_now", jinja::Value::function("strftime_now", [](jinja::Args& args) {
             if (args.positional.size() != 1 || !args.positional[0].is_string() ||
                 !args.keyword.empty()) {
               jinja::eval_fail("strftime_now() takes one format string");
             }
             return jinja::Value(strftime_now(args.positional[0].as_string()));
           }));
  if (extra_context.is_object()) {
    for (const auto& [k, v] : extra_context.items()) {
      try {
        vars.set(k, jinja::from_json(v));
      } catch (const jinja::EvalError& e) {
        fail("chat template variable '{}': {}", k, e.what());
      }
    }
  }
  return template_.render(vars);
}

}  // namespace fp8llm
