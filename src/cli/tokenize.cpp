// `fp8llm tokenize --model DIR --text T`: the token ids of a text (or of a messages file rendered
// through the chat template) as a JSON array, for debugging prompts.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/text_session.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"

namespace fp8llm::cli {
namespace {

struct Options {
  std::string model_dir;
  std::string text;
  bool text_given = false;  // an empty --text is a text (its ids are the special tokens alone)
  bool no_special = false;
  std::string chat_json;
  bool no_generation_prompt = false;
  bool show_text = false;
  std::vector<std::string> template_vars;
};

// KEY=VALUE pairs -> a JSON object of string values.
nlohmann::ordered_json parse_template_vars(const std::vector<std::string>& pairs) {
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  for (const auto& p : pairs) {
    const size_t eq = p.find('=');
    FP8LLM_CHECK(eq != std::string::npos && eq > 0, "--template-var '{}': expected KEY=VALUE", p);
    vars[p.substr(0, eq)] = p.substr(eq + 1);
  }
  return vars;
}

void run_tokenize(const Options& o) {
  FP8LLM_CHECK(o.text_given != !o.chat_json.empty(), "give exactly one of --text and --chat-json");
  TextSession session(o.model_dir);
  std::vector<int32_t> ids;
  if (!o.chat_json.empty()) {
    nlohmann::ordered_json doc;
    try {
      doc = nlohmann::ordered_json::parse(read_text_file(o.chat_json));
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}: invalid JSON at byte {}", o.chat_json, e.byte);
    } catch (const nlohmann::json::exception& e) {  // a number out of range
      fail("{}: invalid JSON: {}", o.chat_json, e.what());
    }
    check_json_depth(doc, o.chat_json);
    // A list of messages, or an object with "messages" (an OpenAI-style request).
    const nlohmann::ordered_json messages =
        doc.is_object() && doc.contains("messages") ? doc["messages"] : doc;
    FP8LLM_CHECK(messages.is_array(), "{}: expected a list of messages or {{\"messages\": [...]}}",
                 o.chat_json);
    const std::string text = session.render_chat(messages, !o.no_generation_prompt,
                                                 parse_template_vars(o.template_vars));
    if (o.show_text) fmt::print(stderr, "{}\n", text);
    ids = session.tokenizer().encode(text, /*add_special_tokens=*/false);
  } else {
    ids = session.tokenizer().encode(o.text, !o.no_special);
  }
  fmt::print("{}\n", nlohmann::json(ids).dump());
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  cmd->add_option("--model,-m", opts->model_dir, "Model directory (tokenizer.json)")->required();
  cmd->add_option("--text,-t", opts->text, "The text to tokenize")
      ->each([opts](const std::string&) { opts->text_given = true; });
  cmd->add_flag("--no-special", opts->no_special, "Do not add special tokens (e.g. BOS)");
  cmd->add_option("--chat-json", opts->chat_json,
                  "A JSON file of messages to render through the chat template first");
  cmd->add_flag("--no-generation-prompt", opts->no_generation_prompt,
                "With --chat-json: do not append the assistant prompt");
  cmd->add_flag("--show-text", opts->show_text,
                "With --chat-json: print the rendered text to stderr");
  cmd->add_option("--template-var", opts->template_vars,
                  "With --chat-json: a template variable KEY=VALUE (repeatable), e.g. "
                  "date_string='26 Jul 2024'");
  cmd->callback([opts] { run_tokenize(*opts); });
}

}  // namespace fp8llm::cli
