// A Hugging Face tokenizer.json tokenizer for byte-level BPE models (Llama-3, Qwen2/2.5/3,
// Mistral-Nemo style), producing the same ids as the tokenizers library.
//
// encode(): added tokens are cut out of the raw text first; the stretches between them are
// normalized, pre-tokenized, and encoded piece by piece by the BPE model; the post-processor then
// adds its special tokens (when asked to). decode(): the decoder turns each token back into bytes,
// and byte sequences that are not valid UTF-8 become U+FFFD.
//
// What tokenizer.json may contain is listed in each part's header (normalizer.h,
// pre_tokenizer.h, bpe_model.h, added_tokens.h, post_processor.h, decoder.h); anything else is an
// fp8llm::Error that names the file, the field and what is supported. "truncation" and "padding"
// are ignored, as transformers does unless asked to truncate or pad. Two transformers-level
// settings of tokenizer_config.json are not applied: clean_up_tokenization_spaces (decode returns
// the decoder's text unchanged, which streaming needs) and add_bos_token / add_eos_token (which
// only LlamaTokenizerFast-style classes turn into a post-processor; they are exposed in config()).
//
// A Tokenizer is cheap to copy (the parts are shared and immutable) and safe to use from several
// threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer_config.h"

namespace fp8llm {

class Tokenizer {
 public:
  // Reads <model_dir>/tokenizer.json and, if present, <model_dir>/tokenizer_config.json.
  static Tokenizer load(const std::filesystem::path& model_dir);
  // From the text of a tokenizer.json; `name` is how errors refer to it.
  static Tokenizer from_json(std::string_view tokenizer_json, const std::string& name,
                             TokenizerConfig config = {});

  // The ids of `text` (which must be valid UTF-8; otherwise an fp8llm::Error), with the
  // post-processor's special tokens when `add_special_tokens`.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  // The text of `ids`, without special added tokens when `skip_special_tokens`. Ids that name no
  // token contribute nothing (tokenizers does the same), so a model whose embedding table is
  // padded beyond the vocabulary cannot make this fail.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token as written in tokenizer.json (byte-level alphabet for model tokens).
  std::optional<std::string> id_to_token(int32_t id) const;
  // One past the largest id of any token (model vocabulary or added token).
  int32_t vocab_size() const;
  // The bytes decode() produces for `id` (empty for an id that names no token).
  std::string_view token_bytes(int32_t id) const;
  // Whether `id` is an added token marked special (what skip_special_tokens drops).
  bool is_special(int32_t id) const;
  // The ids of all special added tokens, ascending.
  std::vector<int32_t> special_token_ids() const;

  // From tokenizer_config.json (absent when the file or the entry is).
  const std::optional<std::string>& bos_token() const;
  const std::optional<std::string>& eos_token() const;
  std::optional<int32_t> bos_token_id() const;
  std::optional<int32_t> eos_token_id() const;
  const TokenizerConfig& config() const;

  // Forgets cached piece encodings (the cache only speeds up repeated pieces; results are the
  // same either way). For measuring the uncached path.
  void clear_cache() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  void encode_stretch(std::string_view text, std::vector<int32_t>& ids) const;

  std::shared_ptr<const Impl> impl_;
};

}  // namespace fp8llm
