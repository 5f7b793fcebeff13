#!/usr/bin/env python3
"""Times a full weight sync into fp8llm on a GPU: every weight of a loaded model handed over as
BF16 torch CUDA tensors, re-quantized into the existing FP8 slots, until the engine is ready to
generate again (update_weights returns then). Also reports the extra device memory the sync took
at its peak (sampled every millisecond while it runs) and the wake-up time after sleep(1).

The goal (docs/PERFORMANCE.md): at most 0.1 s for all 8B parameters on an H200, extra device
memory at most the largest tensor + 64 MiB, wake-up at most 0.2 s.

    build-gpu/fp8llm synth --preset llama3-8b --out /tmp/llama3-8b-synthetic
    PYTHONPATH=build-gpu/python python3 scripts/gpu/bench_weight_sync.py \\
        --model /tmp/llama3-8b-synthetic --quantization fp8-block fp8-row [--fused] [--repeats 5]

The trainer's tensors are random BF16 values of the model's shapes (the values do not change the
time); --fused hands q/k/v and gate/up over as qkv_proj and gate_up_proj.
"""

import argparse
import statistics
import threading
import time

import torch

import fp8llm


def trainer_tensors(llm, fused):
    """BF16 CUDA tensors with the model's names and shapes (scales are the engine's own)."""
    listing = [(name, shape) for name, _, shape in llm.state_dict_listing("dequantized")]
    gen = torch.Generator(device="cuda").manual_seed(0)
    tensors = {}
    for name, shape in listing:
        t = torch.empty(shape, dtype=torch.bfloat16, device="cuda")
        t.normal_(0.0, 0.02, generator=gen)
        tensors[name] = t
    if not fused:
        return list(tensors.items())
    out = []
    for name, t in tensors.items():
        if ".q_proj." in name:
            parts = [tensors[name.replace("q_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
            out.append((name.replace("q_proj", "qkv_proj"), torch.cat(parts)))
        elif ".gate_proj." in name:
            parts = [tensors[name.replace("gate_proj", p)] for p in ("gate_proj", "up_proj")]
            out.append((name.replace("gate_proj", "gate_up_proj"), torch.cat(parts)))
        elif not any(p in name for p in (".k_proj.", ".v_proj.", ".up_proj.")):
            out.append((name, t))
    return out


class FreeMemoryLow:
    """The lowest free device memory seen while running, sampled every millisecond."""

    def __init__(self):
        self.low = torch.cuda.mem_get_info()[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.low = min(self.low, torch.cuda.mem_get_info()[0])
            time.sleep(0.001)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def bench(model, mode, args):
    llm = fp8llm.LLM(model, quantization=mode, device="cuda", kv_memory=args.kv_memory,
                     max_context=4096)
    named = trainer_tensors(llm, args.fused)
    largest = max(t.numel() * t.element_size() for _, t in named)
    params = sum(t.numel() for _, t in named)
    greedy = fp8llm.SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    llm.generate([[1, 2, 3, 4]], greedy, use_tqdm=False)  # CUDA graphs recorded before the syncs
    times, extra = [], []
    for _ in range(args.repeats):
        torch.cuda.synchronize()
        free_before = torch.cuda.mem_get_info()[0]
        with FreeMemoryLow() as low:
            start = time.perf_counter()
            report = llm.update_weights(named)
            times.append(time.perf_counter() - start)
        extra.append(max(0, free_before - low.low))
    out = llm.generate([[1, 2, 3, 4]], greedy, use_tqdm=False)[0].outputs[0].token_ids
    wake = []
    for _ in range(args.repeats):
        llm.sleep(1)
        torch.cuda.synchronize()
        start = time.perf_counter()
        llm.wake_up()
        wake.append(time.perf_counter() - start)
    print(f"{mode}{' (fused names)' if args.fused else ''}: {params / 1e9:.2f} B parameters in "
          f"{len(named)} tensors ({report['quantized']} projections re-quantized)")
    print(f"  sync: median {statistics.median(times):.3f} s, best {min(times):.3f} s "
          f"(of which checks {report['check_seconds']:.3f} s); "
          f"{params * 2 / statistics.median(times) / 1e9:.0f} GB/s of BF16")
    print(f"  extra device memory at the peak: {max(extra) / 2**20:.0f} MiB "
          f"(largest tensor {largest / 2**20:.0f} MiB; goal: at most that + 64 MiB)")
    print(f"  wake_up after sleep(1): median {statistics.median(wake):.3f} s")
    print(f"  generates after the syncs: {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--quantization", nargs="+", default=["fp8-block", "fp8-row"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fused", action="store_true")
    parser.add_argument("--kv-memory", type=float, default=4.0, help="GiB")
    args = parser.parse_args()
    for mode in args.quantization:
        bench(args.model, mode, args)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
