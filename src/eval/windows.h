// The windows over which `fp8llm perplexity` scores a text. scripts/train/windows.py writes the
// same definition for transformers (the reference numbers); the two must stay identical.
//
// The text is tokenized once, with the tokenizer's special tokens (the BOS in front): ids[0, n).
// Windows of `context` tokens start every `stride` tokens (1 <= stride <= context), the last one
// cut at the end of the text, and stop with the first window that reaches the end. Each window
// is a fresh sequence. Window k = ids[begin, end) scores the targets t with
//     max(end of window k - 1, begin + 1) <= t < end        (the first window: 1 <= t < end)
// from the logits at position t - 1, that is, given ids[begin, t). Every target is scored once,
// with at least context - stride tokens before it outside the first window: Hugging Face's
// "strided" perplexity. With stride == context the windows are disjoint and the first token of
// each is context only; a window left with no target is dropped.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace fp8llm::eval {

struct Window {
  int64_t begin = 0;  // ids[begin, end) run as one fresh sequence
  int64_t end = 0;
  int64_t first_target = 0;  // targets first_target <= t < end are scored

  bool operator==(const Window&) const = default;
};

// The windows for `n_tokens` ids. An fp8llm::Error when context < 2, stride is outside
// [1, context], or n_tokens < 2.
std::vector<Window> plan_windows(int64_t n_tokens, int64_t context, int64_t stride);

// How many targets the windows score.
int64_t scored_positions(std::span<const Window> windows);

}  // namespace fp8llm::eval
