#include "server/tokenize_api.h"

#include <set>

#include "server/api_error.h"
#include "server/request_fields.h"

namespace fp8llm::server {
namespace {

using ojson = nlohmann::ordered_json;

std::string dump(const ojson& j) {
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

}  // namespace

std::string tokenize_response(const ojson& body, const ServedModel& model) {
  (void)check_model(body, model);  // an adapter tokenizes as its base model
  check_known_fields(body,
                     {"model", "prompt", "add_special_tokens", "messages", "add_generation_prompt",
                      "chat_template_kwargs", "return_token_strs"},
                     "/tokenize");
  const bool has_prompt = body.contains("prompt") && !body["prompt"].is_null();
  const bool has_messages = body.contains("messages") && !body["messages"].is_null();
  if (has_prompt == has_messages) bad_request("prompt", "prompt: give one of prompt and messages");
  std::vector<int32_t> ids;
  if (has_prompt) {
    if (!body["prompt"].is_string()) bad_request("prompt", "prompt: expected a string");
    try {
      ids = model.text->tokenizer().encode(body["prompt"].get<std::string>(),
                                           flag(body, "add_special_tokens", true));
    } catch (const Error& e) {
      bad_request("prompt", "prompt: {}", e.what());
    }
  } else {
    const auto kwargs = body.find("chat_template_kwargs");
    ids = encode_messages(body["messages"], kwargs == body.end() ? ojson() : *kwargs,
                          flag(body, "add_generation_prompt", true), model);
  }
  ojson out{{"count", ids.size()}, {"max_model_len", model.max_context}, {"tokens", ids}};
  if (flag(body, "return_token_strs", false)) {
    ojson strs = ojson::array();
    for (int32_t id : ids) strs.push_back(model.text->tokenizer().id_to_token(id).value_or(""));
    out["token_strs"] = std::move(strs);
  } else {
    out["token_strs"] = nullptr;
  }
  return dump(out);
}

std::string detokenize_response(const ojson& body, const ServedModel& model) {
  (void)check_model(body, model);
  check_known_fields(body, {"model", "tokens"}, "/detokenize");
  const auto tokens = body.find("tokens");
  if (tokens == body.end() || !tokens->is_array())
    bad_request("tokens", "tokens: expected a list of token ids");
  std::vector<int32_t> ids;
  for (const ojson& v : *tokens) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= model.vocab_size)
      bad_request("tokens", "tokens: {} is not a token id of this model (vocabulary of {})",
                  v.dump(), model.vocab_size);
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return dump(ojson{{"prompt", model.text->decode(ids)}});
}

}  // namespace fp8llm::server
