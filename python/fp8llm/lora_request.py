"""LoRARequest: names an adapter for a request, as vLLM's ``vllm.lora.request.LoRARequest``."""

import dataclasses
import os
from typing import Optional, Union


@dataclasses.dataclass(frozen=True)
class LoRARequest:
    """An adapter by name, and where to read it the first time it is used.

    lora_name: the adapter's name in the engine (LLM.add_lora and generate use it).
    lora_int_id: vLLM's integer id; kept for code written for vLLM, not used to tell adapters
        apart (the name does).
    lora_path: a PEFT adapter directory (adapter_config.json, adapter_model.safetensors); None for
        an adapter already added by name (from tensors, say).
    """

    lora_name: str
    lora_int_id: int = 0
    lora_path: Optional[Union[str, os.PathLike]] = None

    @property
    def name(self) -> str:
        return self.lora_name

    @property
    def path(self) -> Optional[str]:
        return None if self.lora_path is None else os.fspath(self.lora_path)
