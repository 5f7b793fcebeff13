#include "cli/text_session.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "formats/generation_config.h"
#include "text/stream_decoder.h"

namespace fp8llm::cli {
namespace {

void add_unique(std::vector<int32_t>& ids, int32_t id) {
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

// The longest prefix of text[0, len) that does not end inside a UTF-8 character.
size_t utf8_safe_prefix(const std::string& text, size_t len) {
  size_t p = len;  // after the loop, text[p - 1] is the lead byte of the last character
  while (p > 0 && len - p < 3 && (static_cast<unsigned char>(text[p - 1]) & 0xC0) == 0x80) --p;
  if (p == 0) return 0;
  const auto lead = static_cast<unsigned char>(text[p - 1]);
  const size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  return len - (p - 1) >= need ? len : p - 1;
}

}  // namespace

TextSession::TextSession(const std::filesystem::path& model_dir)
    : model_dir_(model_dir), tokenizer_(Tokenizer::load(model_dir)) {
  try {
    chat_template_.emplace(ChatTemplate::from_tokenizer_config(model_dir));
  } catch (const Error& e) {
    // Only an error when a chat is asked for.
    chat_template_error_ = e.what();
  }
  for (int32_t id : model_eos_token_ids(model_dir)) add_unique(stop_ids_, id);
  if (auto eos = tokenizer_.eos_token_id()) add_unique(stop_ids_, *eos);
}

std::vector<int32_t> TextSession::encode_text(const std::string& text) const {
  return tokenizer_.encode(text, /*add_special_tokens=*/true);
}

std::string TextSession::render_chat(const nlohmann::ordered_json& messages,
                                     bool add_generation_prompt,
                                     const nlohmann::ordered_json& variables) const {
  FP8LLM_CHECK(chat_template_.has_value(), "{}", chat_template_error_);
  return chat_template_->render(messages, add_generation_prompt, variables);
}

std::vector<int32_t> TextSession::encode_chat(const nlohmann::ordered_json& messages) const {
  // The template writes the special tokens (BOS, headers) itself, as transformers'
  // apply_chat_template(tokenize=True) assumes.
  return tokenizer_.encode(render_chat(messages), /*add_special_tokens=*/false);
}

TextSession::Reply TextSession::generate(Engine& engine, const std::vector<int32_t>& prompt,
                                         GenerationOptions options,
                                         const std::vector<std::string>& stop_strings,
                                         std::FILE* out) const {
  for (int32_t id : stop_ids_) add_unique(options.stop_token_ids, id);
  size_t hold = 0;  // bytes held back because they may begin a stop string
  for (const auto& s : stop_strings) hold = std::max(hold, s.empty() ? 0 : s.size() - 1);

  StreamDecoder decoder(tokenizer_, /*skip_special_tokens=*/true);
  Reply reply;
  std::string pending;  // decoded but not yet printed
  bool stopped_by_string = false;
  auto emit = [&](size_t n) {
    if (n == 0) return;
    // A full disk or a closed pipe stops generation: nobody would read the rest.
    if (std::fwrite(pending.data(), 1, n, out) != n || std::fflush(out) != 0) {
      fail("{}: write failed: {}", out == stdout ? "standard output" : "output",
           std::strerror(errno));
    }
    reply.text.append(pending, 0, n);
    pending.erase(0, n);
  };
  reply.result = engine.generate(prompt, options, [&](int32_t id) {
    pending += decoder.put(id);
    for (const auto& s : stop_strings) {
      const size_t at = s.empty() ? std::string::npos : pending.find(s);
      if (at != std::string::npos) {
        pending.resize(at);
        stopped_by_string = true;
      }
    }
    if (stopped_by_string) return false;
    if (pending.size() > hold) emit(utf8_safe_prefix(pending, pending.size() - hold));
    return true;
  });
  if (!stopped_by_string) pending += decoder.flush();
  emit(pending.size());
  if (stopped_by_string) reply.result.finish_reason = FinishReason::Stop;
  return reply;
}

}  // namespace fp8llm::cli
