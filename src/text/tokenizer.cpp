#include "text/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "core/file_util.h"
#include "core/json_depth.h"
#include "core/json_view.h"
#include "text/added_tokens.h"
#include "text/bpe_model.h"
#include "text/decoder.h"
#include "text/normalizer.h"
#include "text/post_processor.h"
#include "text/pre_tokenizer.h"
#include "text/utf8.h"

namespace fp8llm {

struct Tokenizer::Impl {
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  AddedTokens added;
  PostProcessor post_processor;
  Decoder decoder;
  TokenizerConfig config;
  // Per id, for decoding.
  std::vector<std::string> bytes;
  std::vector<bool> special;
  std::optional<int32_t> bos_id, eos_id;
};

Tokenizer Tokenizer::load(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "tokenizer.json";
  if (!std::filesystem::exists(path))
    fail("{}: not found (the tokenizer is needed)", path.string());
  return from_json(read_text_file(path), path.string(),
                   TokenizerConfig::load(model_dir / "tokenizer_config.json"));
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, const std::string& name,
                               TokenizerConfig config) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(tokenizer_json);
  } catch (const nlohmann::json::exception& e) {  // a syntax error, or a number out of range
    fail("{}: invalid JSON: {}", name, e.what());
  }
  check_json_depth(doc, name);
  const JsonView root(doc, name);
  root.as_object();
  // Optional parts may be null or left out.
  const auto part = [&](std::string_view key) { return root.member(key); };
  auto impl = std::make_shared<Impl>();
  // Read the model type first so that an unsupported model is reported as such. Files written
  // by old versions of tokenizers may leave the type out; tokenizers then goes by the fields.
  const JsonView model = root["model"];
  if (const auto type = model.optional_string("type"); type && *type != "BPE")
    model["type"].fail("'{}' is not supported (supported: BPE)", *type);
  impl->normalizer = Normalizer::parse(part("normalizer"));
  impl->pre_tokenizer = PreTokenizer::parse(part("pre_tokenizer"));
  impl->model = BpeModel::parse(model, impl->pre_tokenizer.ends_with_byte_level());
  impl->added = AddedTokens::parse(part("added_tokens"), impl->normalizer,
                                   [&](std::string_view s) { return impl->model.token_to_id(s); });
  impl->post_processor = PostProcessor::parse(part("post_processor"));
  impl->decoder = Decoder::parse(part("decoder"));
  impl->config = std::move(config);

  int32_t limit = impl->model.id_limit();
  const auto tokens = static_cast<int64_t>(impl->model.id_limit() + impl->added.tokens().size());
  for (const AddedToken& t : impl->added.tokens()) {
    if (t.id >= token_id_bound(tokens))
      fail("{}: added token '{}' has id {} in a vocabulary of {} tokens (ids must be below {})",
           name, t.content, t.id, tokens, token_id_bound(tokens));
    limit = std::max(limit, t.id + 1);
  }
  impl->bytes.resize(limit);
  impl->special.resize(limit);
  for (int32_t id = 0; id < impl->model.id_limit(); ++id) {
    if (const std::string* token = impl->model.id_to_token(id))
      impl->bytes[id] = impl->decoder.token_bytes(*token);
  }
  for (const AddedToken& t : impl->added.tokens()) {
    impl->bytes[t.id] = impl->decoder.token_bytes(t.content);
    impl->special[t.id] = t.special;
  }
  Tokenizer tok(impl);
  if (impl->config.bos_token) impl->bos_id = tok.token_to_id(*impl->config.bos_token);
  if (impl->config.eos_token) impl->eos_id = tok.token_to_id(*impl->config.eos_token);
  return tok;
}

void Tokenizer::encode_stretch(std::string_view text, std::vector<int32_t>& ids) const {
  const Impl& m = *impl_;
  std::string normalized;
  if (!m.normalizer.is_identity()) {
    normalized = m.normalizer.normalize(text);
    text = normalized;
  }
  const auto encode_piece = [&](std::string_view piece) { m.model.encode(piece, ids); };
  std::vector<AddedTokenMatch> matches;
  m.added.match(text, true, matches);
  size_t done = 0;
  for (const AddedTokenMatch& match : matches) {
    m.pre_tokenizer.run(text.substr(done, match.begin - done), encode_piece);
    ids.push_back(match.id);
    done = match.end;
  }
  m.pre_tokenizer.run(text.substr(done), encode_piece);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (const auto bad = utf8::find_invalid(text))
    fail("tokenizer input: the text is not valid UTF-8 (byte {} of {})", *bad, text.size());
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  std::vector<AddedTokenMatch> matches;
  impl_->added.match(text, false, matches);
  size_t done = 0;
  for (const AddedTokenMatch& match : matches) {
    encode_stretch(text.substr(done, match.begin - done), ids);
    ids.push_back(match.id);
    done = match.end;
  }
  encode_stretch(text.substr(done), ids);
  if (add_special_tokens) impl_->post_processor.add_special_tokens(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    bytes += token_bytes(id);
  }
  return utf8::lossy(bytes, false).text;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* t = impl_->added.find(token)) return t->id;
  return impl_->model.token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* t = impl_->added.find(id)) return t->content;
  if (const std::string* token = impl_->model.id_to_token(id)) return *token;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->bytes.size());
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return impl_->bytes[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id];
}

std::vector<int32_t> Tokenizer::special_token_ids() const {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < vocab_size(); ++id)
    if (impl_->special[id]) ids.push_back(id);
  return ids;
}

const std::optional<std::string>& Tokenizer::bos_token() const {
  return impl_->config.bos_token;
}
const std::optional<std::string>& Tokenizer::eos_token() const {
  return impl_->config.eos_token;
}
std::optional<int32_t> Tokenizer::bos_token_id() const {
  return impl_->bos_id;
}
std::optional<int32_t> Tokenizer::eos_token_id() const {
  return impl_->eos_id;
}
const TokenizerConfig& Tokenizer::config() const {
  return impl_->config;
}

void Tokenizer::clear_cache() const {
  impl_->model.clear_cache();
}

}  // namespace fp8llm
