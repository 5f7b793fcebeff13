"""LLM: vLLM's offline API over fp8llm's batching engine, plus the live weights of a training
loop: state_dict (views of the weights, no copy), update_weights (re-quantized in place), and
sleep / wake_up."""

import itertools
import numbers
import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _core
from ._progress import Progress
from .lora_request import LoRARequest
from .outputs import CompletionOutput, Logprob, RequestOutput
from .sampling_params import SamplingParams

PromptType = Union[str, Sequence[int], Dict[str, Any]]
LoRAType = Union[None, str, LoRARequest]

_request_ids = itertools.count()


class LLM:
    """A model loaded for generation.

    model: a Hugging Face model directory (config.json, *.safetensors, and the tokenizer for text).
    quantization: "fp8-block" (the default), "fp8-row", "none" (as in the checkpoint), or "auto"
        (a checkpoint that is FP8 already as it is, else a registered FP8 copy, else fp8-block).
    device: "cuda", "cpu" (the exact reference), or "auto" (cuda when there is one).
    quantization_config: a torchao Float8DynamicActivationFloat8WeightConfig as a dict (as
        config_to_dict writes it) or JSON, bare or as vLLM's hf_overrides; it names the mode.
    kv_memory: GiB for the KV cache (None: most of what is left on the device).
    max_context: positions one sequence may reach (None: the model's).
    max_num_seqs, max_num_batched_tokens, enable_prefix_caching, enforce_eager (no CUDA graphs),
    block_size, kv_cache_dtype ("auto", "fp32", "bf16", "fp8"), fp8_gemm ("tensor-core", "fp32"):
        as the command line's flags of those names (README).
    enable_lora, max_loras (adapters held at once; 1 when only enable_lora is given),
    max_lora_rank (16): LoRA adapters on the FP8 base (add_lora, generate's lora_request).
    tensor_parallel_size: ranks that each hold a shard of every layer (the CPU runs them as
        threads; on CUDA it needs one GPU per rank).
    """

    def __init__(
        self,
        model: Union[str, os.PathLike],
        quantization: str = "fp8-block",
        device: str = "auto",
        quantization_config: Optional[Union[str, Dict[str, Any]]] = None,
        kv_memory: Optional[float] = None,
        max_context: Optional[int] = None,
        max_num_seqs: int = 256,
        max_num_batched_tokens: Optional[int] = None,
        kv_cache_dtype: str = "auto",
        block_size: int = 16,
        enable_prefix_caching: bool = True,
        enforce_eager: bool = False,
        fp8_gemm: str = "tensor-core",
        offline: bool = False,
        cache_dir: Optional[str] = None,
        registry: Optional[str] = None,
        enable_lora: bool = False,
        max_loras: Optional[int] = None,
        max_lora_rank: int = 16,
        tensor_parallel_size: int = 1,
    ):
        if device == "auto":
            device = "cuda" if _core.cuda_available() else "cpu"
        if isinstance(quantization_config, dict):
            quantization_config = json.dumps(quantization_config)
        self.model = os.fspath(model)
        self.device = device
        if max_loras is None:
            max_loras = 1 if enable_lora else 0
        elif max_loras > 0:
            enable_lora = True
        if enable_lora and max_loras < 1:
            raise _core.Error(f"max_loras {max_loras} must be at least 1 with enable_lora")
        self._engine = _core.Engine(
            dict(
                model=self.model,
                quantization=quantization,
                device=device,
                quantization_config=quantization_config or "",
                kv_memory=kv_memory,
                max_context=max_context,
                max_num_seqs=max_num_seqs,
                max_num_batched_tokens=max_num_batched_tokens,
                kv_cache_dtype=kv_cache_dtype,
                block_size=block_size,
                enable_prefix_caching=enable_prefix_caching,
                enforce_eager=enforce_eager,
                fp8_gemm=fp8_gemm,
                offline=offline,
                cache_dir=cache_dir or "",
                registry=registry or "",
                max_loras=max_loras if enable_lora else 0,
                max_lora_rank=max_lora_rank,
                tensor_parallel_size=tensor_parallel_size,
            )
        )
        # Adapters added from a directory, by name: a LoRARequest naming another directory under
        # the same name is an error rather than a silent use of the first.
        self._lora_paths: Dict[str, Optional[str]] = {}
        #: What loading did: mode, seconds, bytes read and resident, peak memory, KV cache, steps.
        self.load_summary: Dict[str, Any] = self._engine.load_summary()

    # --- Generation ---

    def generate(
        self,
        prompts: Union[PromptType, Sequence[PromptType]],
        sampling_params: Optional[Union[SamplingParams, Sequence[SamplingParams]]] = None,
        use_tqdm: bool = True,
        lora_request: Union[LoRAType, Sequence[LoRAType]] = None,
    ) -> List[RequestOutput]:
        """Runs every prompt through the batching engine to the end; outputs in prompt order.

        A prompt is text, a list of token ids, or a dict with "prompt" (text) or
        "prompt_token_ids"; `prompts` is one of them or a list of them. `sampling_params` is one
        for all prompts, or one per prompt. use_tqdm shows a progress bar. lora_request: the
        adapter of every prompt, or one per prompt (None: the base model), as a LoRARequest
        (added from its lora_path the first time) or an adapter's name.
        """
        items = _prompt_list(prompts)
        texts, ids = [], []
        for p in items:
            text, token_ids = self._tokens_of(p)
            texts.append(text)
            ids.append(token_ids)
        return self._run(texts, ids, sampling_params, use_tqdm, lora_request)

    def chat(
        self,
        messages: Union[List[Dict[str, Any]], List[List[Dict[str, Any]]]],
        sampling_params: Optional[Union[SamplingParams, Sequence[SamplingParams]]] = None,
        use_tqdm: bool = True,
        chat_template_kwargs: Optional[Dict[str, Any]] = None,
        lora_request: Union[LoRAType, Sequence[LoRAType]] = None,
    ) -> List[RequestOutput]:
        """Generates replies to a conversation (a list of {"role", "content"} messages), or to each
        of a list of conversations, through the model's chat template."""
        conversations = messages if messages and isinstance(messages[0], list) else [messages]
        variables = json.dumps(chat_template_kwargs) if chat_template_kwargs else ""
        texts, ids = [], []
        for conversation in conversations:
            token_ids = self._engine.encode_chat(json.dumps(conversation), variables)
            ids.append(token_ids)
            texts.append(self._engine.decode(token_ids, skip_special_tokens=False))
        return self._run(texts, ids, sampling_params, use_tqdm, lora_request)

    def logits(self, prompt_token_ids: Sequence[int]):
        """The logits of every position of `prompt_token_ids` as a fresh sequence: a float32
        numpy array [len, vocab]."""
        return self._engine.logits(list(prompt_token_ids))

    def encode(self, text: str) -> List[int]:
        return self._engine.encode(text)

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._engine.decode(list(token_ids), skip_special_tokens)

    @property
    def eos_token_ids(self) -> List[int]:
        return self._engine.eos_token_ids

    def stats(self) -> Dict[str, int]:
        return self._engine.stats()

    # --- Live weights ---

    def state_dict(self, form: str = "stored") -> Dict[str, "_core.Tensor"]:
        """The live weights under their Hugging Face names, in checkpoint order.

        "stored": views of the memory the engine computes from (no copy; on CUDA, device memory):
        FP8 projections as their F8_E4M3 codes (exported as uint8: torch
        .view(torch.float8_e4m3fn)) plus F32 scales named `<weight>_scale_inv` [ceil(N/128),
        ceil(K/128)] (fp8-block) or `<weight>_scale` [N, 1] (fp8-row), everything else as held.
        The views see every update_weights. On CUDA, sleep(2) is refused while any is alive.
        "dequantized": copies in host memory (FP8 projections as BF16, no scales): a copy is
        unavoidable there, and the whole model is copied at once.
        """
        if form == "stored":
            tensors = self._engine.state_dict_views()
        else:
            tensors = self._engine.state_dict_copies(form)
        return {t.name: t for t in tensors}

    def state_dict_listing(self, form: str = "stored") -> List[Tuple[str, str, List[int]]]:
        """(name, dtype, shape) of every tensor of state_dict(form), without reading any."""
        return [tuple(x) for x in self._engine.state_dict_listing(form)]

    def update_weights(
        self, named_tensors: Union[Dict[str, Any], Iterable[Tuple[str, Any]]]
    ) -> Dict[str, Any]:
        """Writes new weights into the engine: (name, tensor) pairs, or a dict.

        Tensors are anything with __dlpack__ (torch tensors on the host or on the GPU; a torch
        tensor that requires grad is detached) or numpy arrays, BF16, F16 or F32, contiguous.
        Names are Hugging Face names, or the fused `...self_attn.qkv_proj.weight` and
        `...mlp.gate_up_proj.weight`. All are checked before any is written (an fp8llm.Error names
        the bad one and nothing changes); FP8 projections are quantized in place as a load would.
        Refused while requests run or asleep at level 2. Returns a summary (tensors, seconds).
        """
        pairs = named_tensors.items() if isinstance(named_tensors, dict) else named_tensors
        prepared = []
        for name, tensor in pairs:
            detach = getattr(tensor, "detach", None)
            if callable(detach) and not isinstance(tensor, _core.Tensor):
                tensor = detach()
            prepared.append((name, tensor))
        return self._engine.update_weights(prepared)

    def sleep(self, level: int = 1) -> None:
        """Level 1 frees the KV cache; level 2 also moves the weights to host memory (on CUDA;
        the CPU backend's weights are there already). Refused while requests run."""
        self._engine.sleep(level)

    def wake_up(self) -> None:
        """Puts back what sleep() gave up: the same weights bit for bit, an empty KV cache."""
        self._engine.wake_up()

    @property
    def sleep_level(self) -> int:
        return self._engine.sleep_level

    def reset_prefix_cache(self) -> bool:
        """Forgets every cached prefix: later prompts compute their keys and values afresh.
        update_weights() already does this; True, as vLLM's returns when the cache was reset."""
        self._engine.reset_prefix_cache()
        return True

    # --- LoRA adapters ---

    def add_lora(
        self,
        lora: Union[str, LoRARequest],
        tensors: Optional[Union[Dict[str, Any], Iterable[Tuple[str, Any]]]] = None,
        config: Optional[Union[str, Dict[str, Any]]] = None,
    ) -> bool:
        """Adds an adapter: a LoRARequest with its lora_path (a PEFT directory), or a name with
        `tensors` (PEFT names: `base_model.model.<module>.lora_A.weight` ...; BF16, F16 or F32)
        and `config` (adapter_config.json as a dict or JSON: r, lora_alpha, target_modules,
        use_rslora). Checked whole before anything changes. Returns True, as vLLM's does."""
        name = lora.lora_name if isinstance(lora, LoRARequest) else lora
        if tensors is None:
            path = lora.path if isinstance(lora, LoRARequest) else None
            if path is None:
                raise _core.Error(f"lora {name}: give a LoRARequest with lora_path, or tensors")
            self._engine.add_lora_dir(name, path)
            self._lora_paths[name] = path
            return True
        if config is None:
            raise _core.Error(f"lora {name}: tensors need their adapter config")
        if isinstance(config, dict):
            config = json.dumps(config)
        self._engine.add_lora_tensors(name, config, _pairs(tensors, to_host=True))
        self._lora_paths[name] = None
        return True

    def replace_lora(
        self, name: str, tensors: Union[Dict[str, Any], Iterable[Tuple[str, Any]]]
    ) -> None:
        """New factors for an adapter already added, of the same modules and rank (a training
        loop's per-step sync). Requests that use it, running ones too, see them from the next
        engine step on; the prefix cache of the old factors is never reused. CUDA tensors on the
        engine's device are read there (checked and packed on the device, nothing copied to the
        host); give them all on the device or all on the host."""
        self._engine.replace_lora(name, _pairs(tensors, to_host=False))

    def remove_lora(self, name: Union[str, LoRARequest]) -> bool:
        """Removes an adapter (an error while unfinished requests use it). Returns True."""
        name = name.lora_name if isinstance(name, LoRARequest) else name
        self._engine.remove_lora(name)
        self._lora_paths.pop(name, None)
        return True

    def list_loras(self) -> List[str]:
        return list(self._engine.lora_names())

    # --- Internals ---

    def _lora_names(self, lora_request, count: int) -> List[str]:
        if lora_request is None:
            return []
        if isinstance(lora_request, (str, LoRARequest)):
            requests = [lora_request] * count
        else:
            requests = list(lora_request)
            if len(requests) != count:
                raise _core.Error(
                    f"{len(requests)} lora_request for {count} prompts (give one, or one per "
                    "prompt)"
                )
        names = []
        added = set(self._engine.lora_names())  # asked once, not once per prompt
        for r in requests:
            if r is None:
                names.append("")
            elif isinstance(r, str):
                names.append(r)
            else:
                if r.path is not None:
                    known = self._lora_paths.get(r.lora_name)
                    if r.lora_name not in added:
                        self.add_lora(r)
                        added.add(r.lora_name)
                    elif known is not None and known != r.path:
                        raise _core.Error(
                            f"lora {r.lora_name}: already added from {known}, not {r.path}"
                        )
                names.append(r.lora_name)
        return names

    def _tokens_of(self, prompt: PromptType) -> Tuple[Optional[str], List[int]]:
        if isinstance(prompt, str):
            return prompt, self._engine.encode(prompt)
        if isinstance(prompt, dict):
            if "prompt_token_ids" in prompt:
                return prompt.get("prompt"), [int(t) for t in prompt["prompt_token_ids"]]
            if "prompt" in prompt:
                return prompt["prompt"], self._engine.encode(prompt["prompt"])
            raise _core.Error('a prompt dict needs "prompt" or "prompt_token_ids"')
        return None, [int(t) for t in prompt]

    def _run(self, texts, ids, sampling_params, use_tqdm, lora_request=None) -> List[RequestOutput]:
        if sampling_params is None:
            sampling_params = SamplingParams()
        if isinstance(sampling_params, SamplingParams):
            params = [sampling_params] * len(ids)
        else:
            params = list(sampling_params)
            if len(params) != len(ids):
                raise _core.Error(
                    f"{len(params)} sampling_params for {len(ids)} prompts (give one, or one "
                    "per prompt)"
                )
        for p in params:
            if not p.detokenize and p.stop:
                raise _core.Error("stop: stop strings need detokenize=True (they match the text)")
        loras = self._lora_names(lora_request, len(ids))
        progress = Progress(len(ids)) if use_tqdm and ids else None
        try:
            results = self._engine.generate(ids, [p.to_json() for p in params], loras, progress)
        finally:
            if progress is not None:
                progress.close()
        outputs = []
        for p, text, (prompt_ids, cached, completions, scored) in zip(params, texts, results):
            if not p.detokenize:
                for c in completions:
                    c["text"] = ""
            # vLLM's form: nothing for the first prompt token, which has no context.
            prompt_logprobs = None if scored is None else [None] + self._logprob_dicts(scored)
            outputs.append(
                RequestOutput(
                    request_id=str(next(_request_ids)),
                    prompt=text,
                    prompt_token_ids=list(prompt_ids),
                    outputs=[self._completion(c) for c in completions],
                    num_cached_tokens=cached,
                    prompt_logprobs=prompt_logprobs,
                )
            )
        return outputs

    def _logprob_dicts(self, entries) -> List[Dict[int, Logprob]]:
        """vLLM's form of (token, logprob, top) entries: a dict by token id of the top tokens
        (ranked) and the token itself."""
        decode = self._engine.decode if self._engine.has_tokenizer else None
        out = []
        for token, logprob, top in entries:
            entry = {}
            for rank, (tid, lp) in enumerate(top, start=1):
                entry[tid] = Logprob(lp, rank, decode([tid], False) if decode else None)
            if token not in entry:
                entry[token] = Logprob(logprob, None, decode([token], False) if decode else None)
            out.append(entry)
        return out

    def _completion(self, c: Dict[str, Any]) -> CompletionOutput:
        logprobs = None
        cumulative = None
        if c["logprobs"] is not None:
            logprobs = self._logprob_dicts(c["logprobs"])
            cumulative = float(sum(logprob for _, logprob, _ in c["logprobs"]))
        return CompletionOutput(
            index=c["index"],
            text=c["text"],
            token_ids=list(c["token_ids"]),
            cumulative_logprob=cumulative,
            logprobs=logprobs,
            finish_reason=c["finish_reason"],
        )


def _pairs(tensors, to_host: bool) -> List[Tuple[str, Any]]:
    """(name, tensor) pairs, detached from autograd. With to_host, device tensors are copied to
    host memory (add_lora checks a new adapter's factors on the host)."""
    pairs = tensors.items() if isinstance(tensors, dict) else tensors
    out = []
    for name, tensor in pairs:
        if not isinstance(tensor, _core.Tensor):
            detach = getattr(tensor, "detach", None)
            if callable(detach):
                tensor = detach()
            if to_host and getattr(tensor, "is_cuda", False):
                tensor = tensor.cpu()
        out.append((name, tensor))
    return out


def _prompt_list(prompts) -> List[PromptType]:
    if isinstance(prompts, (str, dict)):
        return [prompts]
    prompts = list(prompts)
    if prompts and all(isinstance(p, numbers.Integral) for p in prompts):
        return [prompts]  # one prompt of token ids
    return prompts
