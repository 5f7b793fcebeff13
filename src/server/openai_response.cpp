#include "server/openai_response.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <random>

namespace fp8llm::server {
namespace {

using ojson = nlohmann::ordered_json;

std::string dump(const ojson& j) {
  // Token strings of a token that ends inside a UTF-8 character are not valid UTF-8.
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

// JSON has no -inf; vLLM writes -9999.0 for it.
double finite_logprob(float lp) {
  return std::isfinite(lp) ? static_cast<double>(lp) : -9999.0;
}

ojson bytes_of(std::string_view s) {
  ojson out = ojson::array();
  for (char c : s) out.push_back(static_cast<unsigned char>(c));
  return out;
}

}  // namespace

std::string response_id(Endpoint endpoint) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}{:016x}", endpoint == Endpoint::Completions ? "cmpl-" : "chatcmpl-",
                     rng(), rng());
}

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Length:
      return "length";
    case FinishReason::Cancelled:
      return "abort";
    case FinishReason::Error:
      return "error";
  }
  return "error";
}

ResponseFormat::ResponseFormat(const ApiRequest& request, const TextModel& text, std::string model,
                               std::string id)
    : request_(request),
      text_(text),
      model_(std::move(model)),
      id_(std::move(id)),
      created_(std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count()) {
  const size_t choices = request_.prompts.size() * static_cast<size_t>(request_.n);
  text_offset_.assign(choices, 0);
  echoed_.assign(choices, false);
  prompt_listed_.assign(choices, false);
}

ojson ResponseFormat::head(const char* object) const {
  return ojson{{"id", id_}, {"object", object}, {"created", created_}, {"model", model_}};
}

ojson ResponseFormat::usage_json(const Usage& u) const {
  return ojson{{"prompt_tokens", u.prompt_tokens},
               {"completion_tokens", u.completion_tokens},
               {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

std::string ResponseFormat::token_string(int32_t id) const {
  if (request_.tokens_as_ids) return fmt::format("token_id:{}", id);
  return std::string(text_.tokenizer().token_bytes(id));
}

std::string ResponseFormat::text_of(const ChoiceDelta& d) {
  const auto c = static_cast<size_t>(d.index);
  if (request_.echo_texts.empty() || echoed_[c]) return d.text;
  echoed_[c] = true;
  return request_.echo_texts[c / static_cast<size_t>(request_.n)] + d.text;
}

ojson ResponseFormat::logprobs(const ChoiceDelta& d) {
  if (request_.top_logprobs < 0) return nullptr;
  const auto c = static_cast<size_t>(d.index);
  if (request_.endpoint == Endpoint::ChatCompletions) {
    ojson content = ojson::array();
    for (const TokenLogprob& t : d.logprobs) {
      const std::string s = token_string(t.id);
      ojson top = ojson::array();
      for (const auto& [id, lp] : t.top) {
        const std::string ts = token_string(id);
        top.push_back({{"token", ts}, {"logprob", finite_logprob(lp)}, {"bytes", bytes_of(ts)}});
      }
      content.push_back({{"token", s},
                         {"logprob", finite_logprob(t.logprob)},
                         {"bytes", bytes_of(s)},
                         {"top_logprobs", std::move(top)}});
    }
    return ojson{{"content", std::move(content)}};
  }
  ojson tokens = ojson::array(), token_logprobs = ojson::array(), top = ojson::array(),
        offsets = ojson::array();
  // Offsets are into the choice's text, to which a token adds its decoded bytes: a special token
  // none unless the request keeps them (whatever the token's name, or "token_id:N", looks like).
  const size_t p = c / static_cast<size_t>(request_.n);
  const auto text_bytes = [&](int32_t id, bool skip_special) {
    return text_.tokenizer().decode(std::span<const int32_t>(&id, 1), skip_special).size();
  };
  const bool skip_special = request_.prompts[p].sampling.skip_special_tokens;
  const auto add = [&](const TokenLogprob& t, size_t offset, bool skip) {
    const std::string s = token_string(t.id);
    tokens.push_back(s);
    token_logprobs.push_back(finite_logprob(t.logprob));
    // OpenAI lists the sampled token among the top ones even when it is not one of them.
    ojson entry = ojson::object();
    for (const auto& [id, lp] : t.top) entry[token_string(id)] = finite_logprob(lp);
    if (!entry.contains(s)) entry[s] = finite_logprob(t.logprob);
    top.push_back(std::move(entry));
    offsets.push_back(offset);
    return text_bytes(t.id, skip);
  };
  // Echoing, the list begins with the prompt's tokens, its first without a log-probability (it
  // has nothing before it), their offsets from the start of the echoed prompt (its text has no
  // special tokens).
  if (!request_.echo_texts.empty() && !prompt_listed_[c]) {
    prompt_listed_[c] = true;
    const std::vector<int32_t>& prompt = request_.prompts[p].prompt;
    tokens.push_back(token_string(prompt.at(0)));
    token_logprobs.push_back(nullptr);
    top.push_back(nullptr);
    offsets.push_back(0);
    size_t at = text_bytes(prompt.at(0), true);
    for (const TokenLogprob& t : d.prompt_logprobs) at += add(t, at, true);
  }
  // Offsets count from the start of the choice's text; the echoed prompt comes first.
  size_t offset = text_offset_[c];
  for (const TokenLogprob& t : d.logprobs) offset += add(t, offset, skip_special);
  return ojson{{"tokens", std::move(tokens)},
               {"token_logprobs", std::move(token_logprobs)},
               {"top_logprobs", std::move(top)},
               {"text_offset", std::move(offsets)}};
}

std::string ResponseFormat::role_chunk(int choice, bool with_usage) const {
  ojson j = head("chat.completion.chunk");
  j["choices"] = ojson::array({{{"index", choice},
                                {"delta", {{"role", "assistant"}, {"content", ""}}},
                                {"logprobs", nullptr},
                                {"finish_reason", nullptr}}});
  if (with_usage) j["usage"] = nullptr;
  return dump(j);
}

std::string ResponseFormat::chunk(const ChoiceDelta& d, const std::optional<Usage>& usage) {
  const bool chat = request_.endpoint == Endpoint::ChatCompletions;
  const auto c = static_cast<size_t>(d.index);
  ojson j = head(chat ? "chat.completion.chunk" : "text_completion");
  std::string text = text_of(d);
  // Offsets of this chunk's tokens start after the text returned before them, echo included.
  text_offset_[c] += text.size() - d.text.size();
  ojson lp = logprobs(d);
  text_offset_[c] += d.text.size();
  ojson choice{{"index", d.index}};
  if (chat) {
    choice["delta"] = text.empty() ? ojson::object() : ojson{{"content", std::move(text)}};
  } else {
    choice["text"] = std::move(text);
  }
  choice["logprobs"] = std::move(lp);
  choice["finish_reason"] = d.finish ? ojson(finish_reason_name(*d.finish)) : ojson(nullptr);
  if (request_.return_token_ids) choice["token_ids"] = d.tokens;
  j["choices"] = ojson::array({std::move(choice)});
  if (usage) j["usage"] = request_.continuous_usage ? usage_json(*usage) : ojson(nullptr);
  return dump(j);
}

std::string ResponseFormat::usage_chunk(const Usage& usage) const {
  ojson j = head(request_.endpoint == Endpoint::ChatCompletions ? "chat.completion.chunk"
                                                                : "text_completion");
  j["choices"] = ojson::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string ResponseFormat::response(const std::vector<ChoiceDelta>& choices, const Usage& usage) {
  const bool chat = request_.endpoint == Endpoint::ChatCompletions;
  ojson j = head(chat ? "chat.completion" : "text_completion");
  ojson list = ojson::array();
  for (const ChoiceDelta& d : choices) {
    const auto c = static_cast<size_t>(d.index);
    std::string text = text_of(d);
    text_offset_[c] = text.size() - d.text.size();
    ojson choice{{"index", d.index}};
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", std::move(text)}};
    } else {
      choice["text"] = std::move(text);
    }
    choice["logprobs"] = logprobs(d);
    choice["finish_reason"] = finish_reason_name(d.finish.value_or(FinishReason::Length));
    if (request_.return_token_ids) {
      choice["token_ids"] = d.tokens;
      if (!chat)
        choice["prompt_token_ids"] = request_.prompts[c / static_cast<size_t>(request_.n)].prompt;
    }
    list.push_back(std::move(choice));
  }
  j["choices"] = std::move(list);
  if (chat && request_.return_token_ids) j["prompt_token_ids"] = request_.prompts[0].prompt;
  j["usage"] = usage_json(usage);
  return dump(j);
}

}  // namespace fp8llm::server
