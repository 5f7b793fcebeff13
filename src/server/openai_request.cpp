#include "server/openai_request.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "server/api_error.h"
#include "server/request_fields.h"
#include "serving/sampling_json.h"

namespace fp8llm::server {
namespace {

using ojson = nlohmann::ordered_json;

// nlohmann's parser keeps its own stack, but printing a value (as error messages do) recurses.
constexpr int kMaxDepth = 64;

// How a request field is treated. Ignored fields change nothing a client could notice (user,
// metadata); unsupported ones would, so they are accepted only with the value that means "off".
enum class Use { Read, Ignored, OffOnly };

using FieldTable = std::map<std::string, Use, std::less<>>;

// An endpoint's own fields and those both endpoints take, sampling's among them (an endpoint's
// own entry wins where a name is in both).
FieldTable with_shared_fields(FieldTable t) {
  const FieldTable shared{{"model", Use::Read},
                          {"stream", Use::Read},
                          {"stream_options", Use::Read},
                          {"return_tokens_as_token_ids", Use::Read},
                          {"return_token_ids", Use::Read},
                          {"user", Use::Ignored},
                          {"metadata", Use::Ignored},
                          {"store", Use::Ignored},
                          {"service_tier", Use::Ignored},
                          // vLLM's own form of the prompt's log-probabilities; completions
                          // return them with echo and logprobs, as OpenAI's API does.
                          {"prompt_logprobs", Use::OffOnly}};
  t.insert(shared.begin(), shared.end());
  for (const std::string& f : sampling_fields()) t.emplace(f, Use::Read);
  return t;
}

const FieldTable& fields_of(Endpoint e) {
  static const FieldTable completions = with_shared_fields({{"prompt", Use::Read},
                                                            {"echo", Use::Read},
                                                            {"add_special_tokens", Use::Read},
                                                            {"suffix", Use::OffOnly},
                                                            {"best_of", Use::OffOnly}});
  static const FieldTable chat = with_shared_fields({{"messages", Use::Read},
                                                     {"max_completion_tokens", Use::Read},
                                                     {"top_logprobs", Use::Read},
                                                     {"chat_template_kwargs", Use::Read},
                                                     {"add_generation_prompt", Use::Read},
                                                     {"parallel_tool_calls", Use::Ignored},
                                                     {"tools", Use::OffOnly},
                                                     {"tool_choice", Use::OffOnly},
                                                     {"functions", Use::OffOnly},
                                                     {"function_call", Use::OffOnly},
                                                     {"response_format", Use::OffOnly},
                                                     {"modalities", Use::OffOnly},
                                                     {"echo", Use::OffOnly},
                                                     {"continue_final_message", Use::OffOnly}});
  return e == Endpoint::Completions ? completions : chat;
}

std::vector<std::string> names_of(const FieldTable& t) {
  std::vector<std::string> names;
  for (const auto& [name, use] : t) names.push_back(name);
  return names;
}

// The value of an unsupported field that asks for nothing: null, false, 0, "", [] or {}, or what
// OpenAI's clients send for "the default" (tool_choice "none"/"auto", response_format text,
// modalities ["text"]). best_of may equal n.
bool is_off(const std::string& field, const ojson& v, const ojson& body) {
  if (v.is_null()) return true;
  if (v.is_boolean()) return !v.get<bool>();
  if (v.is_number()) {
    if (field == "best_of") {
      const ojson* n = body.contains("n") ? &body["n"] : nullptr;
      const double want = n != nullptr && n->is_number() ? n->get<double>() : 1.0;
      return v.get<double>() == want;
    }
    return v.get<double>() == 0;
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    return s.empty() ||
           ((field == "tool_choice" || field == "function_call") && (s == "none" || s == "auto"));
  }
  if (v.is_array()) return v.empty() || (field == "modalities" && v == ojson::array({"text"}));
  if (v.is_object()) {
    return v.empty() || (field == "response_format" && v.size() == 1 && v.contains("type") &&
                         v["type"] == "text");
  }
  return false;
}

std::string_view endpoint_path(Endpoint e) {
  return e == Endpoint::Completions ? "/v1/completions" : "/v1/chat/completions";
}

void check_fields(Endpoint e, const ojson& body) {
  const FieldTable& table = fields_of(e);
  for (const auto& [key, value] : body.items()) {
    const auto it = table.find(key);
    if (it == table.end())
      bad_request(key, "{}: not a field of {} requests", key, endpoint_path(e));
    if (it->second == Use::OffOnly && !is_off(key, value, body))
      bad_request(key, "{}: not supported by this server (only its default is accepted)", key);
  }
}

const ojson* field(const ojson& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

int64_t whole_number(const ojson& v, const char* name, int64_t lo, int64_t hi) {
  // A float must be whole and inside [lo, hi] before it is converted: converting one beyond
  // int64's range is undefined.
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::trunc(d))
      bad_request(name, "{}: expected an integer, got {}", name, v.dump());
    if (d < static_cast<double>(lo) || !(d < static_cast<double>(hi) + 1.0))
      bad_request(name, "{}: {} is out of range [{}, {}]", name, v.dump(), lo, hi);
    return static_cast<int64_t>(d);
  }
  if (!v.is_number_integer()) bad_request(name, "{}: expected an integer, got {}", name, v.dump());
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    bad_request(name, "{}: {} is out of range [{}, {}]", name, v.dump(), lo, hi);
  const auto x =
      v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
  if (x < lo || x > hi)
    bad_request(name, "{}: {} is out of range [{}, {}]", name, v.dump(), lo, hi);
  return x;
}

int32_t token_id(const ojson& v, const char* name, const ServedModel& m) {
  if (!v.is_number_integer())
    bad_request(name, "{}: {} is not a token id (expected an integer)", name, v.dump());
  const bool in_range = v.is_number_unsigned()
                            ? v.get<uint64_t>() < static_cast<uint64_t>(m.vocab_size)
                            : v.get<int64_t>() >= 0 && v.get<int64_t>() < m.vocab_size;
  if (!in_range)
    bad_request(name, "{}: {} is not a token id of this model (vocabulary of {})", name, v.dump(),
                m.vocab_size);
  return static_cast<int32_t>(v.get<int64_t>());
}

std::vector<int32_t> token_ids(const ojson& list, const char* name, const ServedModel& m) {
  std::vector<int32_t> ids;
  ids.reserve(list.size());
  for (const ojson& v : list) ids.push_back(token_id(v, name, m));
  return ids;
}

struct Prompt {
  std::vector<int32_t> ids;
  std::string text;  // for echo
};

std::vector<int32_t> encode_text(const std::string& text, bool special, const char* name,
                                 const ServedModel& m) {
  try {
    return m.text->tokenizer().encode(text, special);
  } catch (const Error& e) {
    bad_request(name, "{}: {}", name, e.what());
  }
}

// Completions' prompt: a string, a list of strings, a list of token ids, or a list of lists of
// token ids.
std::vector<Prompt> completion_prompts(const ojson& body, const ServedModel& m) {
  const ojson* p = field(body, "prompt");
  if (p == nullptr) bad_request("prompt", "prompt: required");
  const bool special = flag(body, "add_special_tokens", true);
  const auto from_text = [&](const ojson& s) {
    const std::string text = s.get<std::string>();
    return Prompt{encode_text(text, special, "prompt", m), text};
  };
  const auto from_ids = [&](const ojson& list) {
    std::vector<int32_t> ids = token_ids(list, "prompt", m);
    std::string text = m.text->decode(ids);
    return Prompt{std::move(ids), std::move(text)};
  };
  constexpr const char* kShapes =
      "expected a string, a list of strings, a list of token ids or a list of lists of token ids";
  if (p->is_string()) return {from_text(*p)};
  if (!p->is_array() || p->empty()) bad_request("prompt", "prompt: {}", kShapes);
  const ojson& first = p->front();
  std::vector<Prompt> out;
  if (first.is_number()) {
    out.push_back(from_ids(*p));
  } else if (first.is_string()) {
    for (const ojson& s : *p) {
      if (!s.is_string()) bad_request("prompt", "prompt: {}", kShapes);
      out.push_back(from_text(s));
    }
  } else if (first.is_array()) {
    for (const ojson& list : *p) {
      if (!list.is_array() || list.empty()) bad_request("prompt", "prompt: {}", kShapes);
      out.push_back(from_ids(list));
    }
  } else {
    bad_request("prompt", "prompt: {}", kShapes);
  }
  return out;
}

std::string content_text(const ojson& content, size_t index) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    bad_request("messages", "messages[{}].content: expected a string or a list of text parts",
                index);
  // vLLM joins text parts with newlines.
  std::string text;
  for (size_t j = 0; j < content.size(); ++j) {
    const ojson& part = content[j];
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
        !part.contains("text") || !part["text"].is_string())
      bad_request("messages",
                  "messages[{}].content[{}]: only {{\"type\": \"text\", \"text\": ...}} "
                  "parts are supported",
                  index, j);
    if (j > 0) text += '\n';
    text += part["text"].get<std::string>();
  }
  return text;
}

// OpenAI's completions logprobs (0..5 there; vLLM allows up to 20) or chat's logprobs +
// top_logprobs, as the engine's count of top tokens (-1: none).
int logprobs_of(Endpoint e, const ojson& body) {
  if (e == Endpoint::Completions) {
    const ojson* l = field(body, "logprobs");
    return l == nullptr ? -1 : static_cast<int>(whole_number(*l, "logprobs", 0, kMaxLogprobs));
  }
  const bool wanted = flag(body, "logprobs", false);
  const ojson* top = field(body, "top_logprobs");
  if (top == nullptr) return wanted ? 0 : -1;
  const auto k = static_cast<int>(whole_number(*top, "top_logprobs", 0, kMaxLogprobs));
  if (!wanted) bad_request("top_logprobs", "top_logprobs: needs logprobs set to true");
  return k;
}

}  // namespace

ojson parse_body(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth)
        bad_request("", "the request body nests deeper than {} levels", kMaxDepth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  ojson j;
  try {
    j = ojson::parse(body);
  } catch (const nlohmann::json::exception& e) {
    bad_request("", "the request body is not valid JSON: {}", e.what());
  }
  if (!j.is_object()) bad_request("", "the request body must be a JSON object");
  return j;
}

std::string check_model(const ojson& body, const ServedModel& model) {
  const ojson* m = field(body, "model");
  if (m == nullptr) return "";
  if (!m->is_string()) bad_request("model", "model: expected a string, got {}", m->dump());
  const std::string name = m->get<std::string>();
  if (name == model.name) return "";
  if (std::find(model.adapters.begin(), model.adapters.end(), name) != model.adapters.end())
    return name;
  std::string served = fmt::format("`{}`", model.name);
  for (const std::string& a : model.adapters) served += fmt::format(", `{}`", a);
  throw ApiError(
      404,
      fmt::format("model: the model `{}` does not exist (this server serves {})", name, served),
      "model", "model_not_found");
}

std::vector<int32_t> encode_messages(const ojson& messages, const ojson& template_kwargs,
                                     bool add_generation_prompt, const ServedModel& model) {
  if (!messages.is_array() || messages.empty())
    bad_request("messages", "messages: expected a non-empty list of messages");
  static const std::vector<std::string> roles = {"system", "user", "assistant", "developer",
                                                 "tool"};
  ojson chat = ojson::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    if (!m.is_object()) bad_request("messages", "messages[{}]: expected an object", i);
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string() ||
        std::find(roles.begin(), roles.end(), role->get<std::string>()) == roles.end())
      bad_request("messages",
                  "messages[{}].role: expected one of system, user, assistant, "
                  "developer, tool",
                  i);
    ojson out = m;
    out["content"] = content_text(m.contains("content") ? m["content"] : ojson(), i);
    chat.push_back(std::move(out));
  }
  if (!template_kwargs.is_null() && !template_kwargs.is_object())
    bad_request("chat_template_kwargs", "chat_template_kwargs: expected an object");
  std::string text;
  try {
    text = model.text->render_chat(chat, add_generation_prompt, template_kwargs);
  } catch (const Error& e) {
    bad_request("messages", "messages: {}", e.what());
  }
  // The template writes the special tokens itself.
  return encode_text(text, false, "messages", model);
}

ApiRequest parse_api_request(Endpoint endpoint, const ojson& body, const ServedModel& model) {
  const std::string adapter = check_model(body, model);
  check_fields(endpoint, body);
  ApiRequest r;
  r.endpoint = endpoint;
  const bool chat = endpoint == Endpoint::ChatCompletions;

  r.stream = flag(body, "stream", false);
  if (const ojson* so = field(body, "stream_options")) {
    if (!r.stream) bad_request("stream_options", "stream_options: only allowed with stream true");
    if (!so->is_object()) bad_request("stream_options", "stream_options: expected an object");
    for (const auto& [key, value] : so->items()) {
      if (key != "include_usage" && key != "continuous_usage_stats")
        bad_request("stream_options", "stream_options.{}: not a stream option", key);
    }
    r.include_usage = flag(*so, "include_usage", false);
    r.continuous_usage = flag(*so, "continuous_usage_stats", false);
  }
  r.tokens_as_ids = flag(body, "return_tokens_as_token_ids", false);
  r.return_token_ids = flag(body, "return_token_ids", false);
  r.top_logprobs = logprobs_of(endpoint, body);
  const bool echo = !chat && flag(body, "echo", false);

  // The sampling fields, under the names parse_sampling reads.
  const char* max_name = "max_tokens";
  nlohmann::json sampling = nlohmann::json::object();
  for (const std::string& f : sampling_fields()) {
    if (f == "logprobs" || f == "prompt_logprobs" || f == "max_tokens") continue;
    if (const ojson* v = field(body, f.c_str())) sampling[f] = nlohmann::json(*v);
  }
  if (r.top_logprobs >= 0) sampling["logprobs"] = r.top_logprobs;
  // Echo with logprobs lists the prompt's tokens too.
  if (echo && r.top_logprobs >= 0) sampling["prompt_logprobs"] = r.top_logprobs;
  // Chat's max_completion_tokens replaces max_tokens (kept by OpenAI for older clients).
  const ojson* max_field = chat ? field(body, "max_completion_tokens") : nullptr;
  if (max_field != nullptr)
    max_name = "max_completion_tokens";
  else
    max_field = field(body, "max_tokens");
  std::optional<int64_t> max_tokens;
  if (max_field != nullptr) max_tokens = whole_number(*max_field, max_name, 1, INT32_MAX);
  SamplingParams defaults;
  defaults.temperature = 1.0f;
  // Checked against min_tokens before the context fixes it (the engine checks it again then).
  defaults.max_tokens = static_cast<int>(max_tokens.value_or(INT32_MAX));
  TextSampling parsed;
  try {
    parsed = parse_sampling(sampling, "request", defaults);
  } catch (const Error& e) {
    std::string message = e.what();
    if (message.starts_with("request: ")) message.erase(0, 9);
    throw request_error(Error(message), names_of(fields_of(endpoint)));
  }
  r.n = parsed.params.n;

  std::vector<Prompt> prompts;
  const char* prompt_name = chat ? "messages" : "prompt";
  if (chat) {
    const ojson* messages = field(body, "messages");
    if (messages == nullptr) bad_request("messages", "messages: required");
    const ojson* kwargs = field(body, "chat_template_kwargs");
    prompts.push_back({encode_messages(*messages, kwargs ? *kwargs : ojson(),
                                       flag(body, "add_generation_prompt", true), model),
                       ""});
  } else {
    prompts = completion_prompts(body, model);
  }
  if (static_cast<int64_t>(prompts.size()) * r.n > model.max_sequences)
    bad_request("n",
                "n: {} prompts times n = {} is more than the {} sequences this server runs at "
                "once",
                prompts.size(), r.n, model.max_sequences);

  for (Prompt& p : prompts) {
    const auto len = static_cast<int64_t>(p.ids.size());
    if (len == 0) bad_request(prompt_name, "{}: empty (at least one token is needed)", prompt_name);
    if (len >= model.max_context)
      bad_request(prompt_name,
                  "{}: {} tokens do not fit the context of {} positions (at least "
                  "one must be left to generate)",
                  prompt_name, len, model.max_context);
    if (max_tokens && len + *max_tokens > model.max_context)
      bad_request(max_name,
                  "{}: {} prompt tokens plus {} to generate exceed the context of {} "
                  "positions",
                  max_name, len, *max_tokens, model.max_context);
    TextRequest t{std::move(p.ids), parsed, adapter};
    t.sampling.params.max_tokens = static_cast<int>(max_tokens.value_or(model.max_context - len));
    if (t.sampling.params.min_tokens > t.sampling.params.max_tokens)
      bad_request("min_tokens",
                  "min_tokens: {} is more than the {} tokens this prompt may generate",
                  t.sampling.params.min_tokens, t.sampling.params.max_tokens);
    r.prompts.push_back(std::move(t));
    if (echo) r.echo_texts.push_back(std::move(p.text));
  }
  return r;
}

}  // namespace fp8llm::server
