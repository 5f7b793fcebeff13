#include "text/bpe_model.h"

#include <algorithm>

#include "text/byte_level.h"
#include "text/utf8.h"

namespace fp8llm {
namespace {

// Pieces this long or longer are not cached (tokenizers uses the same bound).
constexpr size_t kMaxCachedPieceBytes = 256;

// Splits a merges entry, "a b" or ["a", "b"], into its two tokens.
std::pair<std::string, std::string> merge_parts(const JsonView& entry) {
  if (entry.json().is_string()) {
    const std::string line = entry.as_string();
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
      entry.fail("must be two tokens separated by one space, not '{}'", line);
    return {line.substr(0, space), line.substr(space + 1)};
  }
  if (entry.json().is_array() && entry.json().size() == 2)
    return {entry[0].as_string(), entry[1].as_string()};
  entry.fail("must be a string \"a b\" or a pair [\"a\", \"b\"]");
}

}  // namespace

BpeModel::BpeModel() : cache_(std::make_unique<PieceCache>()) {
  byte_ids_.fill(-1);
}
BpeModel::~BpeModel() = default;
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;

BpeModel BpeModel::parse(const JsonView& node, bool byte_level_input) {
  BpeModel m;
  const std::string type =
      node.has("type") || !node.has("merges") ? node["type"].as_string() : "BPE";
  if (type != "BPE") node["type"].fail("'{}' is not supported (supported: BPE)", type);

  if (const auto dropout = node.find("dropout")) {
    if (!dropout->json().is_number()) dropout->fail("must be a number or null");
    if (dropout->json().get<double>() > 0)
      dropout->fail("{} is not supported (BPE dropout is for training; supported: null or 0)",
                    dropout->json().get<double>());
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const auto v = node.optional_string(key); v && !v->empty())
      node[key].fail("'{}' is not supported (supported: null, for byte-level BPE)", *v);
  }
  m.ignore_merges_ = node.bool_or("ignore_merges", false);
  m.byte_fallback_ = node.bool_or("byte_fallback", false);
  m.fuse_unk_ = node.bool_or("fuse_unk", false);
  m.byte_level_input_ = byte_level_input;

  const JsonView vocab = node["vocab"];
  const auto entries = static_cast<int64_t>(vocab.as_object().size());
  m.vocab_.reserve(static_cast<size_t>(entries));
  for (const auto& [token, id_json] : vocab.as_object()) {
    const JsonView id_node = vocab.child(token, id_json);
    const int64_t id = id_node.as_int();
    if (id < 0 || id > INT32_MAX) id_node.fail("must be a non-negative 32-bit id, not {}", id);
    // Tables are indexed by id: a few entries with huge ids would take gigabytes.
    if (id >= token_id_bound(entries))
      id_node.fail("id {} in a vocabulary of {} tokens (ids must be below {})", id, entries,
                   token_id_bound(entries));
    if (const auto bad = utf8::find_invalid(token)) vocab.fail("has a token that is not UTF-8");
    m.vocab_.emplace(token, static_cast<int32_t>(id));
    if (static_cast<size_t>(id) >= m.id_to_token_.size()) {
      m.id_to_token_.resize(id + 1);
      m.id_used_.resize(id + 1);
    }
    if (!m.id_used_[id]) {
      m.id_to_token_[id] = token;
      m.id_used_[id] = true;
    }
  }

  if (const auto unk = node.optional_string("unk_token")) {
    const auto id = m.token_to_id(*unk);
    if (!id) node["unk_token"].fail("'{}' is not in model.vocab", *unk);
    m.unk_id_ = *id;
  }

  if (const auto merges = node.find("merges")) {
    const size_t n = merges->as_array().size();
    for (size_t rank = 0; rank < n; ++rank) {
      const JsonView entry = (*merges)[rank];
      auto [a, b] = merge_parts(entry);
      const auto a_id = m.token_to_id(a), b_id = m.token_to_id(b);
      const auto ab_id = m.token_to_id(a + b);
      if (!a_id || !b_id || !ab_id) {
        entry.fail("merges '{}' and '{}' but '{}' is not in model.vocab", a, b,
                   !a_id   ? a
                   : !b_id ? b
                           : a + b);
      }
      // A repeated pair keeps its last rank, as in tokenizers.
      m.merges_.insert_or_assign(*a_id, *b_id, MergeRule{static_cast<uint32_t>(rank), *ab_id});
    }
  }

  if (byte_level_input) {
    // Tokens with characters outside the byte-level alphabet can never match byte-level pieces.
    m.byte_vocab_.reserve(m.vocab_.size());
    for (const auto& [token, id] : m.vocab_) {
      auto bytes = byte_level_decode(token);
      if (!bytes) continue;
      if (bytes->size() == 1) m.byte_ids_[static_cast<uint8_t>((*bytes)[0])] = id;
      m.byte_vocab_.emplace(std::move(*bytes), id);
    }
  }
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_limit() || !id_used_[id]) return nullptr;
  return &id_to_token_[id];
}

std::optional<int32_t> BpeModel::piece_id(std::string_view piece) const {
  const auto& map = byte_level_input_ ? byte_vocab_ : vocab_;
  const auto it = map.find(piece);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

void BpeModel::initial_symbols(std::string_view piece, std::vector<int32_t>& ids) const {
  ids.clear();
  // A pending run of unknown characters (fused into one unk when fuse_unk).
  bool pending_unk = false;
  const auto flush_unk = [&] {
    if (pending_unk) ids.push_back(*unk_id_);
    pending_unk = false;
  };
  size_t pos = 0;
  while (pos < piece.size()) {
    const size_t start = pos;
    std::optional<int32_t> id;
    if (byte_level_input_) {
      const int32_t b = byte_ids_[static_cast<uint8_t>(piece[pos++])];
      if (b >= 0) id = b;
    } else {
      pos += utf8::sequence_length(static_cast<uint8_t>(piece[pos]));
      id = token_to_id(piece.substr(start, pos - start));
    }
    if (id) {
      flush_unk();
      ids.push_back(*id);
      continue;
    }
    // The bytes of an unknown character, in the vocabulary's own spelling.
    std::string bytes;
    if (byte_level_input_) {
      bytes.push_back(piece[start]);
    } else {
      bytes.assign(piece.substr(start, pos - start));
    }
    if (byte_fallback_) {
      std::vector<int32_t> fallback;
      for (const char c : bytes) {
        const auto b = token_to_id(fmt::format("<0x{:02X}>", static_cast<uint8_t>(c)));
        if (!b) break;
        fallback.push_back(*b);
      }
      if (fallback.size() == bytes.size()) {
        flush_unk();
        ids.insert(ids.end(), fallback.begin(), fallback.end());
        continue;
      }
    }
    if (unk_id_) {
      if (!fuse_unk_) flush_unk();
      pending_unk = true;
    }
    // Without an unknown token the character is dropped, as in tokenizers.
  }
  flush_unk();
}

void BpeModel::merge(std::vector<int32_t>& ids) const {
  const size_t n = ids.size();
  if (n < 2) return;
  struct Candidate {
    uint32_t rank;
    uint32_t pos;
    int32_t id;
    // The heap keeps the largest on top: make that the lowest rank, then the leftmost.
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  thread_local std::vector<int32_t> prev, next;
  thread_local std::vector<bool> alive;
  thread_local std::vector<Candidate> heap;  // a binary heap (std::push_heap / pop_heap)
  prev.resize(n);
  next.resize(n);
  alive.assign(n, true);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  const auto push = [&](int32_t pos) {
    const int32_t right = next[pos];
    if (right < 0) return;
    const MergeRule* rule = merges_.find(ids[pos], ids[right]);
    if (!rule) return;
    heap.push_back({rule->rank, static_cast<uint32_t>(pos), rule->id});
    std::push_heap(heap.begin(), heap.end());
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    const int32_t pos = static_cast<int32_t>(top.pos);
    if (!alive[pos] || next[pos] < 0) continue;
    const int32_t right = next[pos];
    // Skip entries made stale by an earlier merge (tokenizers compares the resulting token).
    const MergeRule* rule = merges_.find(ids[pos], ids[right]);
    if (!rule || rule->id != top.id) continue;
    ids[pos] = top.id;
    alive[right] = false;
    next[pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = pos;
    if (prev[pos] >= 0) push(prev[pos]);
    push(pos);
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0; i = next[i]) ids[out++] = ids[i];
  ids.resize(out);
}

void BpeModel::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (byte_level_input_ && piece.size() == 1 && byte_ids_[static_cast<uint8_t>(piece[0])] >= 0) {
    out.push_back(byte_ids_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  if (ignore_merges_) {
    if (const auto id = piece_id(piece)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = piece.size() < kMaxCachedPieceBytes;
  const uint64_t hash = cacheable ? PieceCache::hash(piece) : 0;
  if (cacheable && cache_->lookup(piece, hash, out)) return;
  thread_local std::vector<int32_t> ids;
  initial_symbols(piece, ids);
  merge(ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) cache_->store(piece, hash, ids);
}

void BpeModel::clear_cache() const {
  cache_->clear();
}

}  // namespace fp8llm
