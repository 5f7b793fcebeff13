"""What generate() and chat() return, shaped as vLLM's RequestOutput and CompletionOutput."""

import dataclasses
from typing import Dict, List, Optional


@dataclasses.dataclass
class Logprob:
    """The log-probability of a token under the model (log-softmax of the raw logits, before
    temperature, penalties and filters), its rank among the most likely tokens when known, and
    its text."""

    logprob: float
    rank: Optional[int] = None
    decoded_token: Optional[str] = None


@dataclasses.dataclass
class CompletionOutput:
    index: int
    text: Optional[str]  # None when the model directory has no tokenizer
    token_ids: List[int]
    cumulative_logprob: Optional[float]
    # One dict per generated token when logprobs were asked for: the sampled token and the top
    # ones, by token id.
    logprobs: Optional[List[Dict[int, Logprob]]]
    finish_reason: Optional[str]  # "stop" (a stop token or string, or EOS) or "length"

    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclasses.dataclass
class RequestOutput:
    request_id: str
    prompt: Optional[str]
    prompt_token_ids: List[int]
    outputs: List[CompletionOutput]
    finished: bool = True
    num_cached_tokens: int = 0  # prompt tokens whose keys and values the prefix cache held
    # With SamplingParams.prompt_logprobs: one entry per prompt token, None for the first (nothing
    # comes before it), then a dict of the prompt's token and the most likely ones, by token id.
    prompt_logprobs: Optional[List[Optional[Dict[int, Logprob]]]] = None
