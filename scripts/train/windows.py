"""The perplexity windowing that reference.py and `fp8llm perplexity` share (the same definition
is written in src/eval/perplexity.h; the two must stay identical).

The text is tokenized once, with the tokenizer's special tokens (the BOS in front): ids[0, n).
Windows of `context` tokens start every `stride` tokens (stride <= context), the last one cut at
the end of the text, and stop with the first window that reaches the end. Each window is a fresh
sequence (no cache carried over). Window k = ids[begin, end) scores the targets t with
    max(end of window k - 1, begin + 1) <= t < end
(the first window: 1 <= t < end), each from the logits at position t - 1, that is, from
ids[begin, t). So every target is scored once, with at least context - stride tokens before it
(except in the first window), as in Hugging Face's "strided" perplexity. With stride == context
the windows are disjoint and the first token of each window is context only, never a target. A
window left with no target (stride == context and one token at the end) is dropped.

    perplexity = exp(sum of -log p(ids[t] | window) over scored t / number of scored t)
"""


def plan_windows(n_tokens, context, stride):
    """[(begin, end, first_target)] for n_tokens ids."""
    if context < 2:
        raise ValueError(f"context {context}: at least 2 tokens are needed")
    if stride < 1 or stride > context:
        raise ValueError(f"stride {stride}: must be between 1 and the context ({context})")
    if n_tokens < 2:
        raise ValueError(f"{n_tokens} tokens: at least 2 are needed")
    windows = []
    begin = 0
    previous_end = 0
    while True:
        end = min(begin + context, n_tokens)
        first = max(previous_end, begin + 1)
        if first < end:
            windows.append((begin, end, first))
        if end == n_tokens:
            return windows
        previous_end = end
        begin += stride


def scored_positions(windows):
    return sum(end - first for _, end, first in windows)


def windowed_nll(forward, ids, windows):
    """(sum of the NLL in float64, number of scored targets).

    `forward(ids_tensor)` returns the logits [len, vocab] of a fresh sequence (any float dtype);
    `ids` is a 1-D torch tensor of token ids on the model's device. The log-softmax is taken in
    float32, as torch's cross entropy does, and the sum in float64.
    """
    import torch

    total = torch.zeros((), dtype=torch.float64, device=ids.device)
    count = 0
    for begin, end, first in windows:
        logits = forward(ids[begin:end]).float()
        rows = torch.arange(first - 1 - begin, end - 1 - begin, device=ids.device)
        logprobs = torch.log_softmax(logits[rows], dim=-1)
        targets = ids[first:end]
        nll = -logprobs.gather(1, targets.unsqueeze(1)).squeeze(1)
        total += nll.double().sum()
        count += end - first
    return float(total), count
