#include "text/text_model.h"

#include <algorithm>

#include "core/error.h"
#include "formats/generation_config.h"

namespace fp8llm {
namespace {

void add_unique(std::vector<int32_t>& ids, int32_t id) {
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

}  // namespace

TextModel TextModel::load(const std::filesystem::path& model_dir) {
  TextModel m(Tokenizer::load(model_dir));
  try {
    m.chat_template_.emplace(ChatTemplate::from_tokenizer_config(model_dir));
  } catch (const Error& e) {
    m.chat_template_error_ = e.what();  // only an error when a chat is asked for
  }
  for (int32_t id : model_eos_token_ids(model_dir)) add_unique(m.eos_, id);
  if (auto eos = m.tokenizer_.eos_token_id()) add_unique(m.eos_, *eos);
  return m;
}

std::vector<int32_t> TextModel::encode(const std::string& text) const {
  return tokenizer_.encode(text, /*add_special_tokens=*/true);
}

std::string TextModel::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return tokenizer_.decode(ids, skip_special_tokens);
}

std::string TextModel::render_chat(const nlohmann::ordered_json& messages,
                                   bool add_generation_prompt,
                                   const nlohmann::ordered_json& variables) const {
  FP8LLM_CHECK(chat_template_.has_value(), "{}", chat_template_error_);
  return chat_template_->render(messages, add_generation_prompt, variables);
}

std::vector<int32_t> TextModel::encode_chat(const nlohmann::ordered_json& messages,
                                            const nlohmann::ordered_json& variables) const {
  return tokenizer_.encode(render_chat(messages, true, variables), /*add_special_tokens=*/false);
}

}  // namespace fp8llm
