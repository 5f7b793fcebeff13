#include "model/batch.h"

#include <algorithm>

#include "core/error.h"

namespace fp8llm {

void Batch::add_sequence(const std::vector<int32_t>& tokens, int64_t begin, int64_t end,
                         const std::vector<int32_t>& block_table, Logits logits, int32_t lora_slot,
                         std::pair<int64_t, int64_t> scored) {
  FP8LLM_CHECK(begin >= 0 && begin < end && end <= static_cast<int64_t>(tokens.size()),
               "batch: tokens [{}, {}) of a sequence of {}", begin, end, tokens.size());
  FP8LLM_CHECK(static_cast<int64_t>(block_table.size()) * block_size >= end,
               "batch: a block table of {} blocks cannot hold {} positions", block_table.size(),
               end);
  if (query_start.empty()) query_start.push_back(0);
  const auto seq = static_cast<int32_t>(num_seqs());
  for (int64_t p = begin; p < end; ++p) {
    if (logits == Logits::All || (logits == Logits::Last && p == end - 1) ||
        (p >= scored.first && p < scored.second))
      logit_rows.push_back(static_cast<int32_t>(token_ids.size()));
    token_ids.push_back(tokens[static_cast<size_t>(p)]);
    positions.push_back(p);
    slots.push_back(int64_t{block_table[static_cast<size_t>(p / block_size)]} * block_size +
                    p % block_size);
    token_seq.push_back(seq);
    token_lora.push_back(lora_slot);
  }
  query_start.push_back(static_cast<int32_t>(token_ids.size()));
  // Every block table row has max_blocks entries: a longer table widens all rows.
  widen_block_tables(static_cast<int64_t>(block_table.size()));
  const size_t row = block_tables.size();
  block_tables.resize(row + static_cast<size_t>(max_blocks), 0);
  std::copy(block_table.begin(), block_table.end(),
            block_tables.begin() + static_cast<std::ptrdiff_t>(row));
}

void Batch::widen_block_tables(int64_t width) {
  if (width <= max_blocks) return;
  const int64_t seqs = max_blocks == 0 ? 0 : static_cast<int64_t>(block_tables.size()) / max_blocks;
  std::vector<int32_t> wider(static_cast<size_t>(seqs * width), 0);
  for (int64_t s = 0; s < seqs; ++s)
    std::copy_n(block_tables.begin() + s * max_blocks, max_blocks, wider.begin() + s * width);
  block_tables.swap(wider);
  max_blocks = width;
}

void Batch::clear() {
  token_ids.clear();
  positions.clear();
  slots.clear();
  token_seq.clear();
  token_lora.clear();
  query_start.clear();
  block_tables.clear();
  max_blocks = 0;
  logit_rows.clear();
}

BatchView host_view(const Batch& b) {
  BatchView v;
  v.num_tokens = b.num_tokens();
  v.num_seqs = b.num_seqs();
  v.num_logit_rows = static_cast<int64_t>(b.logit_rows.size());
  v.max_blocks = b.max_blocks;
  v.block_size = b.block_size;
  bool leading = true;
  for (int64_t s = 0; s < v.num_seqs; ++s) {
    const int64_t len = b.query_start[s + 1] - b.query_start[s];
    v.max_query_len = std::max(v.max_query_len, len);
    leading = leading && len == 1;
    if (leading) ++v.num_decode_tokens;
  }
  for (int64_t p : b.positions) v.max_position = std::max(v.max_position, p);
  v.token_ids = b.token_ids.data();
  v.positions = b.positions.data();
  v.slots = b.slots.data();
  v.token_seq = b.token_seq.data();
  v.query_start = b.query_start.data();
  v.block_tables = b.block_tables.data();
  v.logit_rows = b.logit_rows.data();
  v.token_lora = b.token_lora.data();
  v.lora = b.lora;
  return v;
}

}  // namespace fp8llm
