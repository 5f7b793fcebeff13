// The "BPE" model of tokenizer.json: a vocabulary and a ranked list of merges. Each pre-tokenized
// piece starts as one symbol per character and repeatedly merges its adjacent pair of lowest rank
// (leftmost first), as tokenizers' BPE does: a heap of candidate merges over a linked list of
// symbols. Results for short pieces are cached (PieceCache), since text repeats words.
//
// Byte-level input: when the pre-tokenizer ends with ByteLevel, pieces arrive as raw bytes rather
// than written in the byte-level alphabet. The vocabulary is translated back to bytes once, at
// load, so each byte is a symbol; ids are the same as with the alphabet.
//
// Supported options: ignore_merges, unk_token, fuse_unk, byte_fallback. Not supported (an error
// at load): dropout above 0, continuing_subword_prefix, end_of_word_suffix.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json_view.h"
#include "text/merge_table.h"
#include "text/piece_cache.h"

namespace fp8llm {

// Hashes std::string and std::string_view alike, so maps keyed by std::string can be searched
// with a view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// Token ids must be below this for a tokenizer of `tokens` tokens. Ids index tables, so a few
// tokens with huge ids would take gigabytes; real vocabularies are dense, with few gaps.
constexpr int64_t token_id_bound(int64_t tokens) {
  return 2 * tokens + 1024;
}

class BpeModel {
 public:
  BpeModel();
  ~BpeModel();
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;

  // `node` is the "model" member. `byte_level_input`: see the file comment.
  static BpeModel parse(const JsonView& node, bool byte_level_input);

  // Vocabulary lookups, in the form written in tokenizer.json.
  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;
  // One past the largest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }
  size_t vocab_count() const { return vocab_.size(); }

  // Appends the ids of one pre-tokenized piece (non-empty, valid UTF-8 unless byte-level).
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

  // Drops cached piece encodings (for measuring the uncached path).
  void clear_cache() const;

 private:
  // The initial symbols of `piece` (ids and byte lengths), with unknown characters resolved.
  void initial_symbols(std::string_view piece, std::vector<int32_t>& ids) const;
  void merge(std::vector<int32_t>& ids) const;
  std::optional<int32_t> piece_id(std::string_view piece) const;

  StringMap<int32_t> vocab_;           // as written in the file
  StringMap<int32_t> byte_vocab_;      // byte-level input: the vocabulary translated to bytes
  std::array<int32_t, 256> byte_ids_;  // byte-level input: the id of each single byte, or -1
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_used_;
  MergeTable merges_;
  bool byte_level_input_ = false;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  std::optional<int32_t> unk_id_;
  std::unique_ptr<PieceCache> cache_;
};

}  // namespace fp8llm
