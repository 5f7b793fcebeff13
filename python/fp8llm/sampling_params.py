"""Sampling parameters under vLLM's names and defaults (temperature 1.0, a random seed unless one
is given). They are checked by the engine when a request is made: a bad value is an fp8llm.Error
naming the field."""

import dataclasses
import json
from typing import Dict, List, Optional, Union


@dataclasses.dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1: off
    min_p: float = 0.0
    max_tokens: int = 16
    # Tokens generated before EOS and stop_token_ids may be drawn (they are held back until then).
    min_tokens: int = 0
    seed: Optional[int] = None
    stop: Optional[Union[str, List[str]]] = None
    stop_token_ids: Optional[List[int]] = None
    # Added to those tokens' logits before a draw, in [-100, 100] (log-probabilities stay raw).
    logit_bias: Optional[Dict[int, float]] = None
    # None: none; 0: the sampled token's log-probability; k <= 20: also the k most likely tokens'.
    logprobs: Optional[int] = None
    # The same for the prompt's tokens (RequestOutput.prompt_logprobs; the first token has none).
    prompt_logprobs: Optional[int] = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    ignore_eos: bool = False
    # The text: a stop string found stays in it; special tokens (<|eot_id|>, ...) add text to it;
    # detokenize=False leaves it empty (token ids only; no stop strings then).
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True
    detokenize: bool = True

    def to_json(self) -> str:
        """The fields the engine reads, as JSON (None: the engine's default)."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        fields.pop("detokenize")
        return json.dumps(fields)
