"""fp8llm: Hugging Face checkpoints of the Llama family loaded straight into FP8, with the API of
vLLM's offline ``LLM`` and the live weights a training loop needs (``state_dict``,
``update_weights``, ``sleep`` / ``wake_up``).

    from fp8llm import LLM, SamplingParams
    llm = LLM("tests/data/tiny-llama", quantization="fp8-block", device="cpu")
    out = llm.generate("Hello", SamplingParams(max_tokens=16, temperature=0))
    print(out[0].outputs[0].text)
"""

from ._core import Error, Tensor, cuda_available
from .llm import LLM
from .lora_request import LoRARequest
from .outputs import CompletionOutput, Logprob, RequestOutput
from .sampling_params import SamplingParams

__all__ = [
    "LLM",
    "SamplingParams",
    "LoRARequest",
    "RequestOutput",
    "CompletionOutput",
    "Logprob",
    "Tensor",
    "Error",
    "cuda_available",
]
