// One forward pass over tokens of several sequences: what the scheduler decided, laid out for the
// ops (nano-vllm's Context, llama.cpp's llama_ubatch). Only attention and the KV append read the
// paging fields (slots, block tables); every other op sees rows of tokens.
//
// A sequence's tokens in a pass are consecutive rows [query_start[s], query_start[s + 1]), at
// consecutive positions; token t attends to positions 0 .. positions[t] of its sequence, found
// through the sequence's block table (position p lives in block table[p / block_size], at offset
// p % block_size).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace fp8llm {

struct Batch {
  int64_t block_size = 16;  // positions per KV block
  // Per token.
  std::vector<int32_t> token_ids;
  std::vector<int64_t> positions;
  std::vector<int64_t> slots;       // where the token's K and V go: block * block_size + offset
  std::vector<int32_t> token_seq;   // the token's sequence (index into the per-sequence arrays)
  std::vector<int32_t> token_lora;  // the token's LoRA slot, or -1
  // Whether the model runs the LoRA ops (the engine has adapter slots), whatever this batch asks.
  bool lora = false;
  // Per sequence.
  std::vector<int32_t> query_start;   // num_seqs + 1 entries
  std::vector<int32_t> block_tables;  // [num_seqs, max_blocks], unused entries 0
  int64_t max_blocks = 0;
  // The token rows whose logits the pass computes, in the order the logits come out.
  std::vector<int32_t> logit_rows;

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int64_t num_seqs() const {
    return query_start.empty() ? 0 : static_cast<int64_t>(query_start.size()) - 1;
  }
  // Appends sequence tokens [begin, end) of `tokens` at positions begin.., with its block table.
  // `logits`: which of its rows get logits (none, the last one, or all); the rows of positions
  // [scored.first, scored.second) get them too (a prompt's log-probabilities), in position order.
  enum class Logits { None, Last, All };
  void add_sequence(const std::vector<int32_t>& tokens, int64_t begin, int64_t end,
                    const std::vector<int32_t>& block_table, Logits logits, int32_t lora_slot = -1,
                    std::pair<int64_t, int64_t> scored = {0, 0});
  // Pads every block table row to `width` entries (a recorded pass reads rows of a fixed width).
  void widen_block_tables(int64_t width);
  void clear();
};

// A Batch where the ops read it: host memory for the CPU, device memory for CUDA
// (Backend::prepare). The sizes are host values; the pointers hold the Batch's arrays.
struct BatchView {
  int64_t num_tokens = 0;
  int64_t num_seqs = 0;
  int64_t num_logit_rows = 0;
  int64_t max_blocks = 0;
  int64_t block_size = 0;
  int64_t max_query_len = 0;  // the most tokens of one sequence in this pass
  // Leading tokens that are each the only token of their sequence in this pass (decoding).
  int64_t num_decode_tokens = 0;
  int64_t max_position = 0;  // the largest position in this pass
  const int32_t* token_ids = nullptr;
  const int64_t* positions = nullptr;
  const int64_t* slots = nullptr;
  const int32_t* token_seq = nullptr;
  const int32_t* query_start = nullptr;
  const int32_t* block_tables = nullptr;
  const int32_t* logit_rows = nullptr;
  const int32_t* token_lora = nullptr;
  // The CUDA backend's: the token rows grouped by LoRA slot, and each one's slot (kernels/lora.h).
  const int32_t* lora_rows = nullptr;
  const int32_t* lora_row_slots = nullptr;
  bool lora = false;
};

// The view of a Batch in host memory (what the CPU backend reads).
BatchView host_view(const Batch& batch);

}  // namespace fp8llm
